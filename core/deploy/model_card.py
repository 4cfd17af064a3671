"""The model card (``README.md``) of an exported run: tasks, test metrics beside baselines,
data and its licence, plugin versions, intended use and limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopmtl.core.deploy.serve.schemas import input_columns
from shopmtl.core.engine.predict import LoadedRun

BUNDLED_DATA = (
    "the **Online Retail** data set bundled with shopmtl: D. Chen (2015), UCI Machine Learning "
    "Repository, [doi:10.24432/C5BW33](https://doi.org/10.24432/C5BW33), licensed "
    "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) (attribution required)"
)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _number(value: Any) -> str:
    return (
        f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"
    )


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def metrics_section(run: LoadedRun) -> list[str]:
    """Per task, a table of each test metric: the model beside every baseline."""
    record = _read(run.run_dir / "metrics.json")
    if not record:
        return ["No `metrics.json` in the run: it has not been evaluated."]
    lines = [f"Best model at step {record.get('best_step')} of {record.get('steps')}; test split."]
    for task in run.specs:
        model = record.get("tasks", {}).get(task, {}).get("test", {})
        baselines = record.get("baselines", {}).get("test", {}).get(task, {})
        header = ["metric", "this model", *baselines]
        lines += ["", f"**{task}**", "", _row(header), _row(["---"] * len(header))]
        for metric, value in model.items():
            lines.append(
                _row(
                    [metric, _number(value), *(_number(b.get(metric)) for b in baselines.values())]
                )
            )
    return lines


def data_section(run: LoadedRun) -> list[str]:
    """Where the training data came from and under which licence."""
    owners = _read(run.run_dir / "plugins.json").get("tasks", {})
    path = run.config.data.path
    lines = [
        f"Transactions: {BUNDLED_DATA}."
        if path is None
        else f"Transactions: `{path}` (data.path), under the licence of its owner; check it before sharing this model."
    ]
    lines.append(
        "Tasks and the plugins that built their rows: "
        + ", ".join(f"`{t}` ({owners.get(t, '?')})" for t in run.specs)
        + ". A third-party plugin's task may read other data; see that plugin's documentation."
    )
    return lines


def model_card(run: LoadedRun, sha256: str) -> str:
    """The card's Markdown."""
    config = run.config
    plugins = _read(run.run_dir / "plugins.json").get("plugins", [])
    encoder = f"`{config.encoder.name}`" + (
        " (random initialisation: a test model)" if config.encoder.random_init else ""
    )
    lines = [
        f"# {config.run_name}: a shopmtl multi-task model",
        "",
        f"One text encoder fine-tuned by shopmtl jointly on {len(run.specs)} task(s), from "
        f"{encoder}{' with LoRA (merged into these weights)' if config.encoder.lora.enabled else ''}. Weights sha256 "
        f"`{sha256}`.",
        "",
        "## Loading",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        "model = AutoModel.from_pretrained(PATH)",
        "tokenizer = AutoTokenizer.from_pretrained(PATH)",
        "```",
        "",
        f"A text's vector is the **{config.encoder.pooling}** pooling of `last_hidden_state` over the attention mask, "
        f"texts truncated to {config.encoder.max_length} tokens. The task heads (`heads/<task>.safetensors`, with "
        "`sharing.safetensors` when the run used MMoE/PLE gates) read that vector plus the task's features "
        "(`features.json`); `shopmtl predict`/`shopmtl serve` on the original run directory apply them.",
        "",
        "## Tasks",
        "",
        "| task | kind | inputs | labels | description |",
        "|---|---|---|---|---|",
    ]
    for name, spec in run.specs.items():
        inputs = [c for c in input_columns(spec) if c not in spec.keys]
        lines.append(
            f"| `{name}` | {spec.kind} | {', '.join(inputs)} | {', '.join(spec.labels)} | "
            f"{spec.description} |"
        )
    lines += [
        "",
        "## Test metrics beside baselines",
        "",
        *metrics_section(run),
        "",
        "## Training data",
        "",
        *data_section(run),
        "",
        "## Plugins",
        "",
        "| plugin | version | source |",
        "|---|---|---|",
        *(f"| {p.get('name')} | {p.get('version')} | {p.get('source')} |" for p in plugins),
        "",
        "## Intended use",
        "",
        "Scoring e-commerce rows like those the tasks were trained on (product descriptions, purchase "
        "histories, weekly sales of one retailer): forecasting, pricing and recommendation *aids* whose output "
        "a person or a downstream system checks.",
        "",
        "## Limits",
        "",
        "- Trained on one retailer's data and period: other catalogues, languages, currencies or seasons shift "
        "the inputs; re-evaluate (`shopmtl evaluate`) on your own data before relying on it.",
        "- The metrics above are one run, one seed, on the test split of that data.",
        "- Not for decisions about individual people (credit, employment, pricing one customer).",
        f"- Texts longer than {config.encoder.max_length} tokens are cut.",
    ]
    return "\n".join(lines) + "\n"
