"""Keep a long-lived run's text bank bounded.

:class:`~shopmtl.core.data.textbank.TextBank` keeps every text it has tokenized, which is
right for one training run and wrong for a server that runs for weeks or a file of
ten million rows. Text ids only have to be stable within one prediction call, so the
bank can be emptied between calls.
"""

from __future__ import annotations

from shopmtl.core.data.textbank import TextBank
from shopmtl.core.engine.predict import LoadedRun

#: Distinct texts kept before the bank is emptied (each costs ~100 bytes to 1 kB).
MAX_TEXTS = 200_000


def bounded_bank(run: LoadedRun, limit: int = MAX_TEXTS) -> TextBank:
    """``run.bank``, replaced by an empty one first when it holds more than ``limit`` texts.

    Call it between prediction calls only (never while a Scorer is using the bank).
    """
    if len(run.bank) > limit:
        run.bank = TextBank(run.bank.tokenizer, run.bank.max_length)
    return run.bank
