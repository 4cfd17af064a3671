"""``shopmtl report``: the HTML page and its PNG plots, built from a tiny run.

The run trains one task of every kind for 12 steps with the smoke config's tiny encoder:
the toy plugin's ``toy_value`` (regression) and ``toy_flag`` (binary), plus three tasks
defined here -- ``toy_class`` (multiclass, with a confusion matrix in its metrics and a
baseline), ``toy_labels`` (multilabel) and ``toy_weekly`` (regression with an item key and
a datetime ``week`` key, and a decode to readable units: the trend view). Every picture
must be referenced by the page, open as an image and not be blank.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import toy_config, toy_plugin_set
from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl
from shopmtl.core.cli.common import PluginSource
from toy_tasks import WORDS

CLASSES = ("mug", "bag", "card")
LABEL_WORDS = ("red", "blue", "mug")
WEEKS = pd.date_range("2011-10-03", periods=8, freq="7D")


def _texts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(WORDS), n), rng.integers(0, len(WORDS), n)
    return a, b, [f"{WORDS[i]} {WORDS[j]}" for i, j in zip(a, b)]


def build_class(ctx: BuildContext) -> TaskData:
    splits = {}
    for split, seed, n in (("train", 11, 180), ("val", 12, 60), ("test", 13, 60)):
        a, _, text = _texts(n, seed)
        splits[split] = pd.DataFrame(
            {"row_id": np.arange(n), "text": text, "label": (a % len(CLASSES)).astype(float)}
        )
    return TaskData(splits)


def class_metrics(batch: EvalBatch) -> dict[str, object]:
    from sklearn.metrics import accuracy_score, confusion_matrix

    y, pred = batch.labels[:, 0].astype(int), batch.predictions.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(len(CLASSES)))).tolist(),
    }


def class_baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    majority = data["train"]["label"].mode()[0]
    return {"majority": {"accuracy": float((data[split]["label"] == majority).mean())}}


def build_labels(ctx: BuildContext) -> TaskData:
    splits = {}
    for split, seed, n in (("train", 21, 180), ("val", 22, 60), ("test", 23, 60)):
        _, _, text = _texts(n, seed)
        frame = pd.DataFrame({"row_id": np.arange(n), "text": text})
        for word in LABEL_WORDS:
            frame[word.upper()] = frame["text"].str.contains(word).astype(float)
        splits[split] = frame
    return TaskData(splits)


def labels_metrics(batch: EvalBatch) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {
        "micro_f1": float(
            f1_score(
                batch.labels.astype(int).ravel(),
                (batch.predictions >= 0.5).ravel(),
                zero_division=0,
            )
        )
    }


def build_weekly(ctx: BuildContext) -> TaskData:
    """12 items x 8 weeks per split; ``label`` is log1p(units), ``lag_1`` last week's."""
    splits = {}
    for split, seed in (("train", 31), ("val", 32), ("test", 33)):
        rng = np.random.default_rng(seed)
        rows = []
        for item in range(12):
            level = rng.uniform(0.5, 4.0)
            units = np.maximum(0, rng.poisson(np.exp(level), len(WEEKS) + 1))
            for k, week in enumerate(WEEKS):
                rows.append(
                    {
                        "item": f"I{item:02d}",
                        "week": week,
                        "text": f"{WORDS[item % len(WORDS)]} item {item}",
                        "lag_1": np.log1p(units[k]),
                        "label": np.log1p(units[k + 1]),
                    }
                )
        splits[split] = pd.DataFrame(rows)
    return TaskData(splits)


def weekly_metrics(batch: EvalBatch) -> dict[str, float]:
    return {"rmse": float(np.sqrt(np.mean((batch.labels[:, 0] - batch.predictions[:, 0]) ** 2)))}


def weekly_baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    frame = data[split]
    return {"lag_1": {"rmse": float(np.sqrt(np.mean((frame["label"] - frame["lag_1"]) ** 2)))}}


def decode_weekly(predictions: np.ndarray) -> pd.DataFrame:
    value = np.asarray(predictions, dtype=float).reshape(-1, 1)[:, 0]
    return pd.DataFrame({"prediction": value, "units": np.expm1(np.clip(value, 0.0, None))})


TOY_CLASS = TaskSpec(
    name="toy_class",
    kind="multiclass",
    description="toy multiclass",
    text="text",
    labels=("label",),
    keys=("row_id",),
    classes=CLASSES,
    build_dataset=build_class,
    metrics=class_metrics,
    metric_directions={"accuracy": "max", "confusion_matrix": "info"},
    primary_metric="accuracy",
    baselines=class_baselines,
)
TOY_LABELS = TaskSpec(
    name="toy_labels",
    kind="multilabel",
    description="toy multilabel",
    text="text",
    labels=tuple(w.upper() for w in LABEL_WORDS),
    keys=("row_id",),
    build_dataset=build_labels,
    metrics=labels_metrics,
    metric_directions={"micro_f1": "max"},
    primary_metric="micro_f1",
)
TOY_WEEKLY = TaskSpec(
    name="toy_weekly",
    kind="regression",
    description="toy weekly units per item",
    text="text",
    labels=("label",),
    numeric=("lag_1",),
    keys=("item", "week"),
    build_dataset=build_weekly,
    metrics=weekly_metrics,
    metric_directions={"rmse": "min"},
    primary_metric="rmse",
    decode=decode_weekly,
    baselines=weekly_baselines,
)


class ReportTasks:
    """A plugin adding the kinds the toy plugin lacks."""

    @hookimpl
    def register_tasks(self, register):
        register(TOY_CLASS)
        register(TOY_LABELS)
        register(TOY_WEEKLY)


@pytest.fixture(scope="module")
def plugins():
    return toy_plugin_set(("report_tasks", ReportTasks()))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, plugins) -> Path:
    """A finished 12-step run of the five toy tasks (validations at steps 6 and 12)."""
    from shopmtl.core.engine.trainer import train

    output = tmp_path_factory.mktemp("report") / "run"
    train(
        toy_config(output, "training.max_steps=12", "training.eval_every=6"),
        plugins,
        progress=False,
    )
    return output


@pytest.fixture(scope="module")
def built(run_dir, plugins):
    from shopmtl.core.report.html import build_report

    return build_report(run_dir, plugins.tasks)


def _referenced(index: Path) -> set[str]:
    import re

    return set(re.findall(r'<img src="([^"]+)"', index.read_text(encoding="utf-8")))


def _assert_renders(png: Path) -> None:
    from matplotlib import image
    from PIL import Image

    with Image.open(png) as picture:
        picture.verify()  # a complete, valid PNG
    pixels = image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200, (
        png.name,
        pixels.shape,
    )
    assert float(pixels[..., :3].var()) > 0, f"{png.name} is blank"


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """The run's records (no model) in a fresh folder."""
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("config.yaml", "plugins.json", "metrics.json"):
        shutil.copy(run_dir / name, copy / name)
    return copy


def _sealed(folder: Path) -> Path:
    """``folder``'s files vouched for: a run manifest over them as they are now.

    The tests below edit a run's records on purpose; a report refuses a run whose files do not
    match its manifest, so each edited copy gets a manifest of its own, as a run we trust would.
    """
    from shopmtl.core.runs.manifest import write_run_manifest

    write_run_manifest(folder)
    return folder


def test_every_plot_is_referenced_and_renders(built):
    folder = built.index.parent
    assert built.index == folder / "index.html" and folder.name == "report"
    pngs = {p.name for p in folder.glob("*.png")}
    assert pngs == {p.name for p in built.images}
    assert _referenced(built.index) == pngs  # each PNG on the page, no broken image links
    for name in sorted(pngs):
        _assert_renders(folder / name)


def test_plots_follow_the_task_kind(built):
    pngs = {p.name for p in built.images}
    expected = {
        "selection_score.png",
        "train_loss.png",  # the trainer records each task's mean training loss per evaluation
        *(
            f"{t}_val_curves.png"
            for t in ("toy_value", "toy_flag", "toy_class", "toy_labels", "toy_weekly")
        ),
        "toy_value_predicted_vs_actual.png",  # regression without a time key: no trend view
        "toy_weekly_predicted_vs_actual.png",
        "toy_weekly_trend.png",  # regression with week + item keys
        "toy_class_confusion.png",  # multiclass
        "toy_flag_roc.png",  # binary
        "toy_labels_label_f1.png",  # multilabel
    }
    assert pngs == expected
    assert "toy_value_trend.png" not in pngs
    page = built.index.read_text(encoding="utf-8")
    assert 'class="report-error"' not in page
    assert "actual units" in page  # toy_weekly shown in its decoded unit, not log1p
    assert "as recorded in metrics.json" in page  # the confusion matrix came from the run's metrics


def test_page_holds_the_metrics_beside_the_baselines(built, run_dir):
    page = built.index.read_text(encoding="utf-8")
    record = json.loads((run_dir / "metrics.json").read_text())
    for task in record["tasks"]:
        assert f'<table class="metrics" data-task="{task}">' in page
    assert '<table class="overview">' in page
    table = page.split('<table class="metrics" data-task="toy_class">')[1].split("</table>")[0]
    assert "shopmtl model (test)" in table and "baseline: majority" in table
    assert (
        "accuracy ↑" in table and "confusion_matrix" not in table
    )  # info metrics stay out of the table
    assert f"{record['tasks']['toy_class']['test']['accuracy']:.4f}" in table
    baseline = record["baselines"]["test"]["toy_weekly"]["lag_1"]["rmse"]
    assert f"{baseline:.4f}" in page.split('data-task="toy_weekly">')[1].split("</table>")[0]
    assert all(set(entry["train_loss"]) <= set(record["tasks"]) for entry in record["history"])


def test_training_loss_curves_when_recorded(run_dir, plugins, tmp_path):
    """With ``train_loss`` in the history (one mean per task per evaluation) the page gets its plot."""
    from shopmtl.core.report.html import build_report

    copy = _copy_run(run_dir, tmp_path)
    record = json.loads((run_dir / "metrics.json").read_text())
    for k, entry in enumerate(record["history"]):
        entry["train_loss"] = {task: 1.0 / (k + 1) + i for i, task in enumerate(record["tasks"])}
    (copy / "metrics.json").write_text(json.dumps(record))

    written = build_report(_sealed(copy), plugins.tasks, predictions=False)
    names = {p.name for p in written.images}
    assert "train_loss.png" in names and "toy_class_confusion.png" not in names
    assert _referenced(written.index) == names
    for png in written.images:
        _assert_renders(png)
    assert "Prediction plots skipped" in written.index.read_text(encoding="utf-8")


def test_run_without_recorded_losses_says_so(run_dir, plugins, tmp_path):
    """Runs from before losses were recorded still get a report, with a note instead of the plot."""
    from shopmtl.core.report.html import build_report

    copy = _copy_run(run_dir, tmp_path)
    record = json.loads((run_dir / "metrics.json").read_text())
    for entry in record["history"]:
        entry.pop("train_loss", None)
    (copy / "metrics.json").write_text(json.dumps(record))
    written = build_report(_sealed(copy), plugins.tasks, predictions=False)
    assert "train_loss.png" not in {p.name for p in written.images}
    assert "Training losses were not recorded" in written.index.read_text(encoding="utf-8")


def test_report_without_the_tasks_plugin_still_shows_metrics(run_dir, tmp_path):
    """Tasks no installed plugin provides: tables and curves from metrics.json, a note, no model."""
    from shopmtl.core.report.html import build_report

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "report"))
    written = build_report(_sealed(copy), {})
    page = written.index.read_text(encoding="utf-8")
    assert "No installed plugin provides" in page
    assert {p.name for p in written.images} == {
        "selection_score.png",
        "train_loss.png",
        *(
            f"{t}_val_curves.png"
            for t in json.loads((run_dir / "metrics.json").read_text())["tasks"]
        ),
    }
    assert '<table class="metrics" data-task="toy_class">' in page


def test_report_command(run_dir, plugins, monkeypatch, tmp_path):
    from shopmtl.core.cli.report import report

    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    source = PluginSource(load=lambda ctx, config=None: plugins)
    run_dir = _copy_run(run_dir, tmp_path)  # the module's own report stays as built
    stale = run_dir / "report" / "old_plot.png"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"not a png")
    _sealed(run_dir)
    result = CliRunner().invoke(report, [str(run_dir), "--no-predictions"], obj=source)
    assert result.exit_code == 0, result.output
    assert f"wrote {run_dir / 'report' / 'index.html'}" in result.output
    assert not stale.exists()  # an earlier report's plots do not linger beside the new page

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    result = CliRunner().invoke(report, [str(unfinished)], obj=source)
    assert result.exit_code == 1
    assert "Error:" in result.output and "no metrics.json" in result.output
