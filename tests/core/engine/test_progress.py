"""The whole-run ETA: training steps, the validations still to come and the final scoring."""

from __future__ import annotations

import pytest
from shopmtl.core.engine import progress as progress_module
from shopmtl.core.engine.progress import (
    EvaluationWork,
    RunProgress,
    evaluations_left,
    format_minutes,
    training_forward_passes,
)


@pytest.mark.parametrize(
    ("step", "total", "every", "left"),
    [
        (0, 1200, 300, 4),
        (299, 1200, 300, 4),
        (300, 1200, 300, 3),
        (1199, 1200, 300, 1),
        (1200, 1200, 300, 0),
        (0, 30, 20, 2),  # step 20 and the final step 30
        (20, 30, 20, 1),
        (30, 30, 20, 0),
        (0, 12, 6, 2),
    ],
)
def test_evaluations_left_counts_every_eval_every_and_the_final_step(step, total, every, left):
    assert evaluations_left(step, total, every) == left


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_prices_validations_by_tokens_then_by_their_measured_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    said: list[str] = []
    # 1 s per step of 3,000 tokens -> 1/9,000 s per forward token; a validation encodes 9,000
    # tokens (1 s), the final scoring 18,000 (2 s).
    bar = RunProgress(
        total=100,
        initial=0,
        eval_every=50,
        work=EvaluationWork(9_000, 18_000),
        say=said.append,
        enabled=False,
    )
    assert bar.seconds_left() is None  # nothing measured yet
    for _ in range(4):
        clock.now += 1.0
        bar.step_done(tokens=3_000)
    # the first step is not timed (warm-up): three steps timed, then announced
    assert len(said) == 1 and said[0].startswith("estimated time left: ")
    assert bar.seconds_left() == pytest.approx(96 * 1.0 + 2 * 1.0 + 2.0)
    assert "2 validation(s)" in said[0] and "1.00 s/step" in said[0]
    clock.now += 30.0  # a validation that really took 30 s: the token price was far off
    bar.validation_done(30.0)
    assert bar.seconds_left() == pytest.approx(96 * 1.0 + 2 * 30.0 + 60.0)
    clock.now += 1.0
    bar.step_done(tokens=3_000)  # the validation pause does not count as training time
    assert bar.seconds_left() == pytest.approx(95 * 1.0 + 2 * 30.0 + 60.0)
    assert bar.validation_total == 30.0


def test_resumed_run_counts_from_its_step(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    bar = RunProgress(
        total=10,
        initial=8,
        eval_every=5,
        work=EvaluationWork(0, 0),
        say=lambda _: None,
        enabled=False,
    )
    clock.now += 2.0
    bar.step_done(tokens=10)
    assert bar.seconds_left() == pytest.approx(
        1 * 2.0 + 1 * 0.0
    )  # one step, then the final validation
    clock.now += 2.0
    bar.step_done(tokens=10)
    assert bar._validations_left() == 1  # step 10's validation is due and has not run
    bar.validation_done(1.0)
    assert bar._validations_left() == 0


@pytest.mark.parametrize(("seconds", "text"), [(42, "42 s"), (450, "7.5 min"), (7560, "2.1 h")])
def test_format_minutes(seconds, text):
    assert format_minutes(seconds) == text


def test_validation_view_is_a_fixed_sample_of_val_and_leaves_the_rest(toy_run):
    from conftest import SMOKE_CONFIG, TOY_OVERRIDES
    from shopmtl.core.config import load_config
    from shopmtl.core.data.prepare import prepare_task, validation_view
    from shopmtl.core.data.textbank import TextBank
    from shopmtl.core.model.encoder import load_tokenizer

    config = load_config(SMOKE_CONFIG, list(TOY_OVERRIDES))
    bank = TextBank(load_tokenizer(config.encoder.name), 16)
    task = prepare_task(toy_run.plugins.tasks["toy_flag"], config, bank)
    sample = validation_view(task, 20, seed=3)
    assert len(sample.data["val"]) == len(sample.rows["val"]) == 20
    assert len(task.data["val"]) > 20  # the full split is untouched, for the final scoring
    assert sample.data["test"] is task.data["test"] and sample.rows["train"] is task.rows["train"]
    again = validation_view(task, 20, seed=3)
    assert again.data["val"].equals(sample.data["val"])  # the same rows at every validation
    frame, rows = sample.data["val"], sample.rows["val"]
    assert (
        bank.ids_for(frame["text"].tolist()) == rows.text_ids
    ).all()  # frame and arrays stay aligned
    assert validation_view(task, None, seed=3) is task
    assert validation_view(task, 10_000, seed=3) is task


@pytest.mark.parametrize(
    ("layers", "frozen", "replayed", "passes"),
    [
        (6, 0, False, 3.0),  # every layer forward and backward
        (6, 3, False, 1.5 + 0.5),  # 3 trainable (3 forwards each) + 3 frozen forwards, over 6
        (6, 3, True, 1.5),  # the frozen half replayed: only the trainable half runs
        (0, 0, False, 3.0),  # layers unknown: the full-encoder figure
    ],
)
def test_training_token_cost_follows_the_frozen_and_replayed_layers(
    layers, frozen, replayed, passes
):
    assert training_forward_passes(layers, frozen, replayed) == pytest.approx(passes)


def test_replayed_layers_make_the_evaluations_priced_higher_per_training_second():
    """The same measured step prices a validation twice as high when half the encoder is replayed."""

    def first_estimate(passes: float) -> float:
        bar = RunProgress(
            total=10,
            initial=0,
            eval_every=10,
            work=EvaluationWork(1_000, 0, passes),
            say=lambda _: None,
            enabled=False,
        )
        bar._step_seconds, bar._step_tokens = 1.0, 1_000
        return bar._evaluation_seconds()[0]

    assert first_estimate(1.5) == pytest.approx(2 * first_estimate(3.0))
