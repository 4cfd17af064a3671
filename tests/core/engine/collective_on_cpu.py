"""Run ``on_main_shared`` in every process of an ``accelerate launch`` (tests/core/engine/test_collective.py).

Writes ``OUT/process-<index>.json`` per process (one file each: lines two processes print at
once can interleave): how often this process ran the work, what it received, and the errors
it raised for work that failed on the main process.

    accelerate launch --num_processes 2 tests/core/engine/collective_on_cpu.py OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from accelerate import Accelerator
from shopmtl.core.data.priors import PriorError
from shopmtl.core.engine.collective import on_main_shared


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lambda")
        self.callback = lambda: None


def main() -> None:
    accelerator = Accelerator(cpu=True)
    once = on_main_shared(accelerator)
    ran = []

    def work():
        ran.append(accelerator.process_index)
        return {"fitted_by": accelerator.process_index, "outputs": np.arange(4) * 1.5}

    value = once(work)
    errors = []
    for failing in (PriorError("prior 'broken' raised ValueError"), Unpicklable()):
        try:
            once(lambda error=failing: (_ for _ in ()).throw(error))
        except Exception as error:  # noqa: BLE001 -- what each process sees is the test's subject
            errors.append(f"{type(error).__name__}: {error}")
    record = {
        "process": accelerator.process_index,
        "ran": len(ran),
        "fitted_by": value["fitted_by"],
        "outputs": value["outputs"].tolist(),
        "errors": errors,
    }
    (Path(sys.argv[1]) / f"process-{accelerator.process_index}.json").write_text(json.dumps(record))
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main()
