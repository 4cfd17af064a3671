"""The loaders on their own: backbones without remote code, sharded checkpoints verified first, manifests."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from shopmtl.core.model.encoder import (
    EncoderError,
    check_no_remote_code,
    load_saved_tokenizer,
)
from shopmtl.core.runs import fsdp as sharded
from shopmtl.core.runs import manifest

from security.hostile import MARKER, auto_map_backbone, plant_pickle


def test_a_backbone_with_auto_map_is_refused_before_transformers_reads_it(toy_run, tmp_path):
    backbone = tmp_path / "backbone"
    shutil.copytree(toy_run.output_dir / "model" / "backbone", backbone)
    check_no_remote_code(backbone)  # the run's own backbone is fine
    assert load_saved_tokenizer(backbone) is not None
    auto_map_backbone(backbone, tmp_path / MARKER)
    with pytest.raises(EncoderError, match="has 'auto_map'"):
        load_saved_tokenizer(backbone)
    (backbone / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (backbone / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["x.Y", None]}})
    )
    with pytest.raises(EncoderError, match="tokenizer_config.json has 'auto_map'"):
        check_no_remote_code(backbone)
    assert not (tmp_path / MARKER).exists()


class _NoLoad:
    """An accelerator whose load_state must not be reached."""

    def load_state(self, folder: str) -> None:
        raise AssertionError("load_state was called on an unverified checkpoint")


def test_a_sharded_checkpoint_is_verified_before_accelerate_reads_it(tmp_path):
    folder = tmp_path / "last"
    (folder / sharded.ACCELERATE_STATE).mkdir(parents=True)
    (folder / sharded.TRAINER_STATE).write_text("{}")
    (folder / sharded.ACCELERATE_STATE / "model.safetensors").write_bytes(b"weights")
    manifest.write_manifest(folder)
    plant_pickle(folder / sharded.ACCELERATE_STATE / "random_states_0.pkl", tmp_path / MARKER)
    with pytest.raises(manifest.UnverifiedRunError, match="random_states_0.pkl is not listed"):
        sharded.load_sharded_checkpoint(folder, _NoLoad(), sampler=None, scheduler=None)
    (folder / manifest.MANIFEST).unlink()
    with pytest.raises(manifest.UnverifiedRunError, match="manifest.json is missing"):
        sharded.load_sharded_checkpoint(folder, _NoLoad(), sampler=None, scheduler=None)
    assert not (tmp_path / MARKER).exists()


def test_manifest_entries_outside_the_folder_and_symlinks_out_are_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    manifest.write_manifest(folder)
    data = json.loads((folder / manifest.MANIFEST).read_text())
    data["files"]["../outside.json"] = data["files"]["a.json"]
    (folder / manifest.MANIFEST).write_text(json.dumps(data))
    with pytest.raises(
        manifest.UnverifiedRunError, match="'../outside.json', which is not a path inside"
    ):
        manifest.verify(folder)
    (tmp_path / "secret").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "secret")
    with pytest.raises(manifest.UnverifiedRunError, match="points outside the run directory"):
        manifest.write_manifest(folder)


def test_a_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "weights.safetensors").write_bytes(b"x" * 4096)
    manifest.write_manifest(folder)
    reads: list[str] = []
    real_open = type(folder).open

    def counting_open(self, mode="r", *args, **kwargs):
        if "r" in mode:
            reads.append(self.name)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(type(folder), "open", counting_open)
    manifest.verify(folder)
    manifest.verify(folder)
    assert reads.count("weights.safetensors") == 0  # hashed when written; the digest is remembered
    (folder / "weights.safetensors").write_bytes(
        b"y" * 4096
    )  # a new mtime: hashed again, and refused
    later = (folder / "weights.safetensors").stat().st_mtime + 2  # beyond the clock's granularity
    os.utime(folder / "weights.safetensors", (later, later))
    with pytest.raises(manifest.CorruptRunError, match="does not match the sha256"):
        manifest.verify(folder)
    assert reads.count("weights.safetensors") == 1
