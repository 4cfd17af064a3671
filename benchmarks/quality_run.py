"""Measuring one run of the quality benchmark: train it (or reuse its saved result) and
record its metrics, phase timings, peak memory and parameter counts; and how a finished
run's config differs from the plan's."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class PhaseTimer:
    """An observer plugin: timestamps of the run's start, validations and checkpoints."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def reset(self) -> None:
        self.events = []

    def _hooks(self):
        from shopmtl import hookimpl

        timer = self

        class Hooks:
            @hookimpl
            def on_run_start(self, run):
                timer.events.append(("start", time.perf_counter()))

            @hookimpl
            def on_evaluation(self, run, step, split, metrics):
                timer.events.append((f"eval_{split}", time.perf_counter()))

        return Hooks()


class PeakMemory:
    """Peak memory of the block: CUDA peak allocated, and this process's peak RSS.

    The RSS peak is VmHWM after resetting it (``/proc/self/clear_refs``); where that is
    not allowed, a thread samples VmRSS every 20 ms.
    """

    def __enter__(self) -> PeakMemory:
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.rss_before = _status_kib("VmRSS") / 1024
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread = None
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
            self.reset_hwm = True
        except OSError:
            self.reset_hwm = False
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, _status_kib("VmRSS") / 1024)

    def __exit__(self, *exc: object) -> None:
        import torch

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = (
            _status_kib("VmHWM") / 1024 if self.reset_hwm else max(self._sampled, self.rss_before)
        )
        self.peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None


def _status_kib(key: str) -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{key}:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def count_parameters(run_dir: Path, tasks: Mapping[str, Any]) -> dict[str, int]:
    """Trainable and total parameters of a finished run, rebuilt as ``predict`` loads it
    (same freezing and LoRA wrapping, so ``requires_grad`` is as in training), plus the
    learnable loss weighting when the run saved one."""
    from safetensors.torch import load_file
    from shopmtl.core import api

    run = api.load_run(run_dir, dict(tasks))
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in run.model.parameters())
    # The encoder's share: what LoRA's "<= 5 % of the trainable parameters" is about (the
    # heads, with their bag-of-words paths, train in full in every variant).
    encoder_trainable = sum(p.numel() for p in run.model.encoder.parameters() if p.requires_grad)
    weighting = run_dir / "model" / "weighting.safetensors"
    if weighting.is_file():
        extra = sum(t.numel() for t in load_file(str(weighting)).values())
        trainable, total = trainable + extra, total + extra
    return {
        "trainable": int(trainable),
        "total": int(total),
        "encoder_trainable": int(encoder_trainable),
    }


def run_one(
    config: Any, plugins: Any, timer: PhaseTimer, run_dir: Path, resume: bool
) -> dict[str, Any]:
    """Train one model (or reuse its result), returning metrics, timings, memory and sizes."""
    from shopmtl.core import api

    fingerprint = config.model_dump(mode="json")
    saved = run_dir / "result.json"
    if resume and saved.is_file():
        result = json.loads(saved.read_text())
        if result.get("config") == fingerprint:
            print(f"    reusing {saved}", flush=True)
            return result
    timer.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    with PeakMemory() as memory:
        trained = api.train(config, plugins, overwrite=True, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    events = timer.events
    start = next((t for name, t in events if name == "start"), started)
    validations = [t for name, t in events if name == "eval_val"]
    result = {
        "config": fingerprint,
        "metrics": trained.metrics,  # task -> split -> metric
        "best_step": trained.best_step,
        "steps": trained.steps,
        "wall_s": wall,
        "cpu_s": cpu,  # CPU time of this process (all threads): wall on a shared machine is noisier
        "prepare_s": start - started,  # data, encoder and model set-up before the first step
        "train_and_validate_s": (validations[-1] - start) if validations else None,
        "validations": len(validations),
        # seconds after the call: "start" (first step), "eval_val" (each validation; the last
        # one is the best model's, after training), "eval_test" (after the final val and test)
        "events": [(name, t - started) for name, t in events],
        "peak_rss_mib": memory.peak_rss,
        "rss_before_mib": memory.rss_before,
        "peak_gpu_mib": memory.peak_gpu,
        "parameters": count_parameters(run_dir, plugins.tasks),
    }
    saved.write_text(json.dumps(result, indent=1) + "\n")
    gc.collect()  # the run's model and optimiser: gone before the next run's peak is measured
    return result


def config_differences(
    ran: Mapping[str, Any], planned: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between a finished run's config and the plan's (where
    a run is written and what it is called are left out): what a table built with
    ``--report-only`` from older runs should tell its reader."""
    differences = []
    for key in sorted(set(ran) | set(planned)):
        name = f"{prefix}{key}"
        if name in ("output_dir", "run_name"):
            continue
        a, b = ran.get(key), planned.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differences += config_differences(a, b, f"{name}.")
        elif a != b:
            differences.append(name)
    if not prefix and not any(
        c.get("encoder", {}).get("lora", {}).get("enabled") for c in (ran, planned)
    ):
        differences = [
            d for d in differences if not d.startswith("encoder.lora.")
        ]  # inert: LoRA is off
    return differences
