"""A hostile run directory, opened by every command that opens one: refused in one line, no code run.

Each case poisons a copy of the session's toy run (tests/security/hostile.py) and runs
each command on it through the real CLI in-process: the exit code is not 0, the output
holds exactly one ``Error:`` line naming the file or the cause, no traceback, and the
marker file a planted payload would create never appears.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability.harness import flip_bytes, invoke

from security.hostile import (
    COMMANDS,
    LAST,
    MARKER,
    MODEL,
    auto_map_backbone,
    edit_json,
    plant_pickle,
    rename_key,
    resign,
)

KEY = "SHOPMTL_SIGNING_KEY"


@pytest.fixture
def ws(toy_run, tmp_path, monkeypatch):
    """A case folder holding a copy of the toy run; ``serve`` never starts a server here."""
    monkeypatch.delenv(KEY, raising=False)
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    shutil.copytree(toy_run.output_dir, tmp_path / "run")
    started: list[object] = []
    monkeypatch.setattr(
        "shopmtl.core.deploy.serve.server.run_server",
        lambda service, settings: started.append(service),
    )
    return tmp_path


def _unlisted(ws: Path) -> None:
    (ws / MODEL / "notes.json").write_text("{}")


def _tampered_json(ws: Path) -> None:
    edit_json(ws / MODEL / "features.json", lambda data: data["toy_value"].update(extra=1))


def _tampered_yaml(ws: Path) -> None:
    path = ws / "run" / "config.yaml"
    path.write_text(path.read_text() + "# changed after the run was written\n")


def _traversal(ws: Path) -> None:
    edit_json(ws / MODEL / "features.json", rename_key("toy_flag", "../../outside"))
    resign(ws)  # the manifest agrees: the name itself must be refused


def _traversal_in_metrics(ws: Path) -> None:
    edit_json(ws / "run" / "metrics.json", lambda d: d["tasks"].update({"../../x": {}}))
    resign(ws)


def _auto_map(ws: Path) -> None:
    auto_map_backbone(ws / MODEL / "backbone", ws / MARKER)
    resign(ws)


def _sharded_unlisted(ws: Path) -> None:
    plant_pickle(ws / LAST / "accelerate" / "pytorch_model_fsdp_0" / "__0_0.distcp", ws / MARKER)


def _signed_with(key: str):
    def prepare(ws: Path) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(KEY, key)
            resign(ws)

    return prepare


#: id -> (how the run is poisoned, the key set when the command runs, words the error must hold)
CASES = {
    "missing-manifest": (
        lambda ws: (ws / "run" / "manifest.json").unlink(),
        None,
        ("run/manifest.json is missing", "--trust-unverified"),
    ),
    "unlisted-file": (_unlisted, None, ("model/notes.json is not listed in",)),
    "tampered-json": (_tampered_json, None, ("model/features.json does not match the sha256",)),
    "tampered-yaml": (_tampered_yaml, None, ("run/config.yaml does not match the sha256",)),
    "changed-weights": (
        lambda ws: flip_bytes(ws / MODEL / "encoder.safetensors"),
        None,
        ("model/encoder.safetensors does not match the sha256",),
    ),
    "path-traversal-name": (_traversal, None, ("'../../outside'", "is not a task name")),
    "path-traversal-metrics": (_traversal_in_metrics, None, ("'../../x'", "is not a task name")),
    "auto-map-backbone": (_auto_map, None, ("backbone/config.json has 'auto_map'",)),
    "sharded-checkpoint-unlisted": (_sharded_unlisted, None, ("__0_0.distcp", "is not listed in")),
    "signed-wrong-key": (_signed_with("k1"), "k2", ("signature does not match",)),
    "signed-no-key": (_signed_with("k1"), None, ("is signed: set SHOPMTL_SIGNING_KEY",)),
    "unsigned-with-key": (lambda ws: None, "k1", ("is not signed, but SHOPMTL_SIGNING_KEY",)),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_run_is_refused_in_one_line(case, command, ws, monkeypatch):
    poison, key, words = CASES[case]
    poison(ws)
    if key is not None:
        monkeypatch.setenv(KEY, key)
    result = invoke("toy", COMMANDS[command](ws))

    assert result.exit_code not in (0, None), f"{case}/{command} was not refused:\n{result.output}"
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in errors[0], f"{case}/{command}: {word!r} not in {errors[0]}"
    assert not (ws / MARKER).exists()
    assert not (ws / "exported").exists() and not (ws / "out.csv").exists()


#: Where a loader might look for a pickle: none is a prior (the prior format is checked elsewhere).
PICKLE_PLACES = (
    MODEL / "pytorch_model.bin",
    MODEL / "backbone" / "pytorch_model.bin",
    MODEL / "heads" / "toy_value.pt",
    MODEL / "training_args.bin",
    LAST / "optimizer.pt",
    LAST / "scheduler.pt",
    LAST / "backbone" / "pytorch_model.bin",
    LAST / "accelerate" / "random_states_0.pkl",
    LAST / "accelerate" / "pytorch_model_fsdp_0" / ".metadata",
    LAST / "accelerate" / "optimizer_0" / "__0_0.distcp",
)


@pytest.mark.parametrize(
    "listed", [False, True], ids=["unlisted", "listed-in-a-rewritten-manifest"]
)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_pickle_payload_anywhere_never_runs(command, listed, ws):
    """Unlisted, the payloads are refused; listed in a manifest the attacker rewrote, no loader reads them."""
    for place in PICKLE_PLACES:
        plant_pickle(ws / place, ws / MARKER)
    if listed:
        resign(ws)
    result = invoke("toy", COMMANDS[command](ws))
    assert not (ws / MARKER).exists(), f"{command} unpickled a payload:\n{result.output}"
    assert "Traceback" not in result.output
    if not listed:
        assert result.exit_code not in (0, None) and "is not listed in" in result.output
    else:
        assert result.exit_code == 0, result.output


def test_trust_unverified_opens_a_run_without_manifest_and_says_so(ws):
    (ws / "run" / "manifest.json").unlink()
    result = invoke("toy", [*COMMANDS["predict"](ws), "--trust-unverified"])
    assert result.exit_code == 0, result.output
    assert "opened without checking its manifest (--trust-unverified)" in result.stderr
    assert (ws / "out.csv").is_file()


def test_trust_unverified_never_reaches_past_the_structural_checks(ws):
    """--trust-unverified skips the manifest, not the name, path and code checks."""
    auto_map_backbone(ws / MODEL / "backbone", ws / MARKER)
    result = invoke("toy", [*COMMANDS["evaluate"](ws), "--trust-unverified"])
    assert result.exit_code == 1 and "has 'auto_map'" in result.output
    assert not (ws / MARKER).exists()


def test_a_signed_run_opens_with_its_key(ws, monkeypatch):
    _signed_with("k1")(ws)
    monkeypatch.setenv(KEY, "k1")
    result = invoke("toy", COMMANDS["predict"](ws))
    assert result.exit_code == 0, result.output


def test_an_unverified_export_carries_no_file_it_did_not_load(ws):
    """A head planted in an unverified run is not a task of it: the export leaves it behind."""
    shutil.copyfile(
        ws / MODEL / "heads" / "toy_flag.safetensors", ws / MODEL / "heads" / "zz.safetensors"
    )
    (ws / MODEL / "notes.txt").write_text("planted")
    result = invoke("toy", [*COMMANDS["export"](ws), "--trust-unverified"])
    assert result.exit_code == 0, result.output
    exported = {p.relative_to(ws / "exported").as_posix() for p in (ws / "exported").rglob("*")}
    assert "heads/toy_value.safetensors" in exported
    assert not any("zz" in name or "notes" in name for name in exported), exported


def test_train_from_an_unverified_run_does_not_carry_its_heads(ws):
    (ws / "run" / "manifest.json").unlink()
    args = [*COMMANDS["train-from"](ws), "encoder.freeze=true", "tasks={toy_value: {}}"]
    result = invoke("toy", [*args, "--trust-unverified"])
    assert result.exit_code == 0, result.output
    assert (
        "opened unverified (--trust-unverified), so its other heads were not carried over"
        in result.output
    )
    heads = sorted(p.name for p in (ws / "new" / "model" / "heads").iterdir())
    assert heads == ["toy_value.safetensors"]
