"""The training progress bar, with an estimate of the *whole* run's time left.

tqdm's own ETA counts optimiser steps only, so it leaves out the validations and the final
calibration and scoring, which on a CPU are a fair share of a run. This bar estimates them
from the tokens they encode: a training step costs a forward and a backward pass (about
three forward passes) over its batch's tokens, so the seconds per forward token measured on
the first steps price every validation before the first one has run; once one has run,
its measured time prices the others. The estimate is printed after the first few steps,
so a user on a slow machine knows within seconds, not after the first validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from shopmtl.core.data.features import EncodedRows
from shopmtl.core.data.textbank import TextBank
from tqdm.auto import tqdm

FORWARD_PASSES_PER_TRAINING_TOKEN = 3.0  # forward + backward ~ 3 forwards
ANNOUNCE_AFTER_STEPS = 3  # the first step pays one-off costs; three give a fair rate


@dataclass(frozen=True)
class EvaluationWork:
    """Tokens a validation and the final scoring encode (each distinct text once)."""

    validation_tokens: int
    final_tokens: int  # calibration, val and test with the best weights
    # What a training token costs in forward passes over every layer (see training_forward_passes).
    training_forward_passes: float = FORWARD_PASSES_PER_TRAINING_TOKEN


def training_forward_passes(layers: int, frozen: int, replayed: bool) -> float:
    """A training token's cost in whole-encoder forward passes, with ``frozen`` of ``layers`` frozen.

    A trainable layer costs a forward and a backward pass (~3 forwards), a frozen one a forward
    pass, and a frozen one whose output is replayed (``encoder.cache_frozen_layers``) nothing;
    an evaluation token runs every layer forward once. Pricing the evaluations with the full
    encoder's 3 when 3 of MiniLM's 6 layers are replayed made the first estimate half as long.
    """
    if layers <= 0:
        return FORWARD_PASSES_PER_TRAINING_TOKEN
    trainable = layers - min(frozen, layers)
    return max(3 * trainable + (0 if replayed else layers - trainable), 1) / layers


def evaluation_work(
    bank: TextBank,
    validation: Sequence[EncodedRows],
    final: Sequence[EncodedRows],
    training_passes: float = FORWARD_PASSES_PER_TRAINING_TOKEN,
) -> EvaluationWork:
    """Tokens of the distinct texts a validation (``validation`` rows) and the final scoring read."""

    def tokens(rows: Sequence[EncodedRows]) -> int:
        ids = [r.text_ids for r in rows] + [r.pair_ids for r in rows if r.pair_ids is not None]
        return int(bank.lengths(np.unique(np.concatenate(ids))).sum()) if ids else 0

    return EvaluationWork(
        validation_tokens=tokens(validation),
        final_tokens=tokens(final),
        training_forward_passes=training_passes,
    )


def evaluations_left(step: int, total: int, eval_every: int) -> int:
    """Validations the loop runs at steps after ``step``: every ``eval_every`` steps and at ``total``."""
    left = total // eval_every - step // eval_every
    return left + (1 if total % eval_every and step < total else 0)


def format_minutes(seconds: float) -> str:
    """``"42 s"``, ``"7.5 min"``, ``"2.1 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class RunProgress:
    """A tqdm bar over optimiser steps whose postfix shows the time left for the whole run."""

    def __init__(
        self,
        total: int,
        initial: int,
        eval_every: int,
        work: EvaluationWork,
        say: Callable[[str], None],
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.step = initial
        self.eval_every = eval_every
        self.work = work
        self.say = say
        self._step_seconds = 0.0
        self._step_tokens = 0
        self._steps_timed = 0
        self._validation_seconds: float | None = None
        self._validated_at = -1  # the step of the last validation, so a pending one is counted
        self.validation_total = (
            0.0  # seconds spent validating in this process, for the run's timings
        )
        self._last = time.perf_counter()
        self._losses: dict[str, str] = {}
        self.bar = tqdm(
            total=total,
            initial=initial,
            disable=not enabled,
            desc="training",
            unit="step",
            dynamic_ncols=True,
        )

    def step_done(self, tokens: int) -> None:
        """One optimiser step finished; ``tokens`` the encoder processed in it (every micro-batch)."""
        now = time.perf_counter()
        self.step += 1
        if (
            self._steps_timed or self.step > 1
        ):  # the first step pays one-off costs (allocation, warm-up)
            self._step_seconds += now - self._last
            self._step_tokens += tokens
            self._steps_timed += 1
        self._last = now
        self.bar.update(1)
        if self._steps_timed == ANNOUNCE_AFTER_STEPS:
            (self.say if self.bar.disable else self.bar.write)(self.estimate_line())
        self._refresh()

    def validation_done(self, seconds: float) -> None:
        """A validation took ``seconds``: it prices the remaining ones from now on."""
        self._validation_seconds = seconds
        self._validated_at = self.step
        self.validation_total += seconds
        self._last = time.perf_counter()  # the pause is no training time
        self._refresh()

    def show_losses(self, losses: Mapping[str, float]) -> None:
        """Each task's recent training loss, in the bar's postfix."""
        self._losses = {t: f"{v:.3f}" for t, v in losses.items()}
        self._refresh()

    def seconds_left(self) -> float | None:
        """Estimated seconds until the run ends (None before any step was timed)."""
        if not self._steps_timed:
            return None
        per_step = self._step_seconds / self._steps_timed
        validation, final = self._evaluation_seconds()
        return (self.total - self.step) * per_step + self._validations_left() * validation + final

    def estimate_line(self) -> str:
        """One line: the whole run's estimated time, and where it goes."""
        per_step = self._step_seconds / max(1, self._steps_timed)
        validation, final = self._evaluation_seconds()
        count = self._validations_left()
        return (
            f"estimated time left: {format_minutes(self.seconds_left() or 0.0)} (training "
            f"{format_minutes((self.total - self.step) * per_step)} at {per_step:.2f} s/step, "
            f"{count} validation(s) {format_minutes(count * validation)}, final scoring {format_minutes(final)}; "
            "less if early stopping ends it)"
        )

    def close(self) -> None:
        self.bar.close()

    def _validations_left(self) -> int:
        """Validations still to run, the one due at this very step included until it ran."""
        due_now = self.step % self.eval_every == 0 or self.step == self.total
        pending = 1 if due_now and self._validated_at != self.step and self.step > 0 else 0
        return evaluations_left(self.step, self.total, self.eval_every) + pending

    def _evaluation_seconds(self) -> tuple[float, float]:
        """Seconds of one validation and of the final scoring, measured or priced by tokens."""
        per_token = (
            self._step_seconds / max(1, self._step_tokens) / self.work.training_forward_passes
        )
        if self._validation_seconds is not None and self.work.validation_tokens:
            per_token = self._validation_seconds / self.work.validation_tokens
            return self._validation_seconds, self.work.final_tokens * per_token
        return self.work.validation_tokens * per_token, self.work.final_tokens * per_token

    def _refresh(self) -> None:
        left = self.seconds_left()
        postfix = {"run left": f"~{format_minutes(left)}"} if left is not None else {}
        self.bar.set_postfix({**postfix, **self._losses}, refresh=False)
