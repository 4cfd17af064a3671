"""The weights manifest of a model folder: a sha256 per weights file, written with it, checked when read.

safetensors checks a file's header, not its numbers: random bytes inside a tensor load
silently (NaN predictions, exit 0), and a truncated or foreign file fails deep inside
torch with a message that does not name the file. ``manifest.json`` records each
``*.safetensors`` file's sha256 and size when the folder is written (inside its atomic
staging folder, so the two always agree); every command that loads weights
(``evaluate``, ``predict``, ``serve``, ``report``, ``train --from``, ``--resume``) calls
:func:`verify` first, and :func:`loading` turns what safetensors or torch raise into one
line naming the file and what to do.

A head file the manifest does not list is loaded as before (copying a head in from a run
with the same encoder adds its task); only its shapes are checked, by :func:`loading`.
A folder without a manifest (written before it existed) is not checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from shopmtl.core.files import write_text_atomic

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class CorruptRunError(ValueError):
    """A run's file is missing, truncated, corrupt or foreign; the message names it and the fix."""


def sha256(path: Path) -> str:
    """The file's sha256, read in chunks (an encoder is tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


#: The files a manifest records: the weights, and fitted priors (pickles: verified before loading).
RECORDED_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.joblib")


def write_manifest(folder: Path) -> None:
    """Record every weights and prior file under ``folder`` (relative path -> sha256, bytes)."""
    files = {
        path.relative_to(folder).as_posix(): {"sha256": sha256(path), "bytes": path.stat().st_size}
        for path in sorted(p for pattern in RECORDED_PATTERNS for p in folder.rglob(pattern))
    }
    write_text_atomic(folder / MANIFEST, json.dumps({"files": files}, indent=2) + "\n")


def recorded(folder: Path) -> dict[str, dict[str, object]]:
    """The manifest's entries (``{}`` for a folder written before manifests existed)."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    return dict(read_json_file(path).get("files", {}))


def read_json_file(path: Path) -> object:
    """A JSON file of a run, or one line naming it when it is truncated or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptRunError(f"{path} is missing: {_restore_hint(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRunError(f"{path} is truncated or not JSON ({error}): {_restore_hint(path)}") from None


def verify(folder: Path, *, complete: bool = False) -> None:
    """Check each recorded weights file that is present against its recorded sha256 and size.

    ``complete``: every recorded file must be there (a checkpoint). Otherwise a recorded
    head that is absent is not an error here (deleting a model's head file drops its
    task); the loaders say when a file they need is missing.
    """
    entries = recorded(folder)
    by_digest = {str(entry["sha256"]): name for name, entry in entries.items()}
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            if complete:
                raise CorruptRunError(f"{path} is missing (listed in {folder / MANIFEST}): {_restore_hint(path)}")
            continue
        size, digest = path.stat().st_size, sha256(path)
        if digest == entry["sha256"]:
            continue
        if by_digest.get(digest):
            what = f"it is a copy of {by_digest[digest]}, another file of this model (a foreign file)"
        elif size != entry.get("bytes"):
            what = f"it is truncated or was replaced ({size} bytes, {entry.get('bytes')} when written)"
        else:
            what = "its bytes changed since it was written (corrupt)"
        raise CorruptRunError(f"{path} does not match the sha256 recorded in {folder / MANIFEST}: {what}; "
                              f"{_restore_hint(path)}")


@contextlib.contextmanager
def loading(path: Path) -> Iterator[None]:
    """Turn a failure to read or fit weights file ``path`` into one line naming it.

    safetensors raises its own error on a bad header and torch a ``RuntimeError`` on a
    shape mismatch (a head of another task or run); neither names the file.
    """
    if not path.is_file():
        raise CorruptRunError(f"{path} is missing: {_restore_hint(path)}")
    try:
        yield
    except CorruptRunError:
        raise
    except Exception as error:  # noqa: BLE001 -- safetensors' and torch's errors, reported in words
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "size mismatch" in str(error) or "Missing key" in str(error) or "Unexpected key" in str(error):
            what = "its tensors do not fit this model: it is another task's or another run's file"
        else:
            what = f"it cannot be read as safetensors, truncated or corrupt ({type(error).__name__}: {first[:200]})"
        raise CorruptRunError(f"{path}: {what}; {_restore_hint(path)}") from None


def _restore_hint(path: Path) -> str:
    """What to do about a bad file, by where it lives."""
    if "checkpoints" in path.parts:
        return ("the checkpoint cannot be resumed; restore the file, or train again with --overwrite "
                "(the run's model/ folder is not affected)")
    return ("restore the file from a copy of the run (checkpoints/last holds the latest weights), "
            "or train the run again")
