"""``shopmtl export --format hf``: the fine-tuned encoder as a transformers folder.

``AutoModel.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)`` load it
with exactly the run's weights (a shared LoRA adapter merged in). Beside it::

    README.md                      the model card
    shopmtl.json                   pooling, max length, tasks, the run's weights' sha256
    heads/<task>.safetensors       the task heads, as trained
    sharing.safetensors            MMoE/PLE experts and gates, if the run used them
    features.json, calibration.json, config.yaml   what the heads need to read new rows
    priors/<task>.safetensors                      a task's fitted classical prior, if the run used one
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shopmtl.core.data.priorfile import save_prior
from shopmtl.core.deploy.merged import ExportError, merged_backbone
from shopmtl.core.deploy.model_card import model_card
from shopmtl.core.deploy.serve.service import weights_sha256
from shopmtl.core.engine.predict import LoadedRun
from shopmtl.core.files import atomic_dir

BESIDE = ("sharing.safetensors", "features.json", "calibration.json")


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
        shutil.copytree(model_dir / "heads", staging / "heads")
        for name in BESIDE:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, staging / name)
        for name, state in run.features.items():  # the classical priors the heads add to
            if state.prior is not None:  # written from what was loaded: arrays and JSON, no pickle
                save_prior(staging, name, state.prior)
        shutil.copy2(run.run_dir / "config.yaml", staging / "config.yaml")
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
