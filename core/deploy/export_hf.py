"""``shopmtl export --format hf``: the fine-tuned encoder as a transformers folder.

``AutoModel.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)`` load it
with exactly the run's weights (a shared LoRA adapter merged in). Beside it::

    README.md                      the model card
    shopmtl.json                   pooling, max length, tasks, the run's weights' sha256
    heads/<task>.safetensors       the task heads, as trained
    sharing.safetensors            MMoE/PLE experts and gates, if the run used them
    features.json, calibration.json, config.yaml   what the heads need to read new rows
    priors/<task>.safetensors                      a task's fitted classical prior, if the run used one

Nothing is copied from the run byte for byte: every file is written again from what
:func:`~shopmtl.core.engine.predict.load_run` loaded (tensors, parsed JSON and YAML), so
an export carries no file of the run onward that shopmtl did not read and check, even
from a run opened with ``--trust-unverified``.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_model
from shopmtl.core.deploy.merged import ExportError, merged_backbone
from shopmtl.core.deploy.model_card import model_card
from shopmtl.core.deploy.serve.service import weights_sha256
from shopmtl.core.engine.predict import LoadedRun
from shopmtl.core.files import atomic_dir
from shopmtl.core.runs import checkpoint


def export_hf(run: LoadedRun, output: str | Path) -> Path:
    """Write the transformers folder to ``output`` (which must not exist); its path."""
    output = Path(output)
    if output.exists():
        raise ExportError(
            f"{output} already exists: choose a new folder (an export never overwrites)"
        )
    model_dir = run.run_dir / "model"
    sha256 = weights_sha256(model_dir, list(run.specs))
    with atomic_dir(output) as staging:
        merged_backbone(run.model.encoder).save_pretrained(staging, safe_serialization=True)
        run.bank.tokenizer.save_pretrained(staging)
        write_beside(run, staging)
        info = {
            "run": run.config.run_name,
            "weights_sha256": sha256,
            "pooling": run.config.encoder.pooling,
            "max_length": run.config.encoder.max_length,
            "tasks": list(run.specs),
        }
        (staging / "shopmtl.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(model_card(run, sha256), encoding="utf-8")
    return output


def write_beside(run: LoadedRun, folder: Path) -> None:
    """The heads, sharing, feature states, priors, calibration and config, from the loaded run."""
    (folder / "heads").mkdir()
    for name, head in run.model.heads.items():
        save_model(head, str(folder / "heads" / f"{name}.safetensors"))
    sharing = run.model.sharing
    if sharing is not None and any(True for _ in sharing.parameters()):
        save_model(sharing, str(folder / "sharing.safetensors"))
    checkpoint.write_features(
        folder, run.features
    )  # features.json, priors/<task>.* (fitted priors)
    if run.calibration:
        checkpoint.write_json(folder / checkpoint.CALIBRATION, run.calibration)
    checkpoint.write_yaml(folder / "config.yaml", run.config.model_dump(mode="json"))
