"""What the malicious-run suite needs: the commands that open a run, and ways to poison one.

Every ``prepare`` gets the case folder ``ws`` (holding ``run/``, a copy of the session's
toy run) and changes it as an attacker who can write the folder would. ``resign``
rewrites the run's manifests afterwards, as an attacker would to hide a change from an
unsigned manifest: what must then stop the attack is not the manifest but the loaders.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

from reliability.harness import TINY, TOY, rows_file

MARKER = "pwned.marker"
MODEL = Path("run") / "model"
LAST = Path("run") / "checkpoints" / "last"


def predict(ws: Path) -> list[str]:
    return [
        "predict",
        ws / "run",
        "--task",
        "toy_value",
        "--input",
        rows_file(ws),
        "--output",
        ws / "out.csv",
    ]


def evaluate(ws: Path) -> list[str]:
    return ["evaluate", ws / "run"]


def report(ws: Path) -> list[str]:
    return ["report", ws / "run", "--no-predictions"]


def export(ws: Path) -> list[str]:
    return ["export", ws / "run", "--format", "hf", "--output", ws / "exported"]


def serve(ws: Path) -> list[str]:
    return ["serve", ws / "run", "--port", "0"]


def train_from(ws: Path) -> list[str]:
    return ["train", *TOY, *TINY, "--from", ws / "run", "--output-dir", ws / "new"]


def resume(ws: Path) -> list[str]:
    return ["train", "--resume", "--output-dir", ws / "run", "training.max_steps=32"]


#: Every command that opens a run directory, by name.
COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "predict": predict,
    "evaluate": evaluate,
    "report": report,
    "export": export,
    "serve": serve,
    "train-from": train_from,
    "resume": resume,
}


class Payload:
    """Unpickling this creates the marker file: proof that a loader ran code from the run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    """A pickle payload at ``path`` (a torch file for ``.bin``/``.pt``/``.pth``, a raw pickle else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".bin", ".pt", ".pth"):
        import torch

        torch.save({"state": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))


def resign(ws: Path) -> None:
    """Rewrite every manifest of the run (unsigned, or with the current key), hiding the change."""
    from shopmtl.core.runs import manifest

    run = ws / "run"
    for folder in (run / "model", run / "checkpoints" / "last"):
        if (folder / manifest.MANIFEST).is_file():
            manifest.write_manifest(folder)
    manifest.write_run_manifest(run)


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def rename_key(old: str, new: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[new] = data.pop(old)

    return change


def auto_map_backbone(folder: Path, marker: Path) -> None:
    """A backbone whose config asks transformers to import code shipped beside it (which writes the marker)."""
    (folder / "evil_model.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n"
    )
    edit_json(
        folder / "config.json",
        lambda data: data.update(
            auto_map={"AutoConfig": "evil_model.EvilConfig", "AutoModel": "evil_model.EvilModel"}
        ),
    )
