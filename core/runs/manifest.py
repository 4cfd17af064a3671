"""The manifest of a run: every file with its sha256, written with the run, checked before it is opened.

A run directory is something people pass around, so opening one must not trust it.
``manifest.json`` records the sha256 and size of **every** file of the folder it sits in
-- weights, JSON, YAML, the backbone's config and tokenizer, priors, checkpoints,
sharded ones included. Three levels write one:

* the run directory itself (written by :func:`~shopmtl.core.runs.transaction.commit`,
  and by the exports that produce a run directory), over every file of the run except
  ``report/`` (what ``shopmtl report`` writes into a finished run; never read back);
* ``model/`` and ``checkpoints/last/``, inside their atomic staging folder, so a
  checkpoint of a run still training can be checked on ``--resume``.

Every command that opens a run (``predict``, ``serve``, ``evaluate``, ``export``,
``report``, ``train --from``, ``train --resume``) calls :func:`verify_run` (or
:func:`verify` on a checkpoint) first, and it **fails closed**: a missing manifest, a
listed file that is missing or changed, and a file the manifest does not list are each
refused with one line naming the file. ``--trust-unverified`` (:func:`trust_unverified`)
opens a run unchecked -- at the user's risk; see docs/security.md. With
``SHOPMTL_SIGNING_KEY`` set, manifests are HMAC-signed and the signature is checked
(:mod:`~shopmtl.core.runs.signing`).

Hashing is done once per file and process (:func:`sha256` remembers a file's digest
by its inode, size and modification time), so checking a run more than once costs no
second read of its weights.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from shopmtl.core.files import write_text_atomic
from shopmtl.core.runs import signing

MANIFEST = "manifest.json"
FORMAT = 2
#: Top-level folders of a run that its manifest does not cover: written after the run, never read back.
NOT_RECORDED: tuple[str, ...] = ("report",)
TRUST_FLAG = "--trust-unverified"
_CHUNK = 1 << 20
_TRUSTING: contextvars.ContextVar[bool] = contextvars.ContextVar("shopmtl_trusting", default=False)
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_WARNED: set[Path] = set()


class CorruptRunError(ValueError):
    """A run's file is missing, truncated, corrupt or foreign; the message names it and the fix."""


class UnverifiedRunError(CorruptRunError):
    """A run cannot be verified (no manifest, a file it does not list, a bad signature, a path outside it)."""


@contextlib.contextmanager
def trust_unverified(enabled: bool = True) -> Iterator[None]:
    """Within the block, open runs without checking their manifest (``--trust-unverified``).

    Structural checks stay on: names and paths read from a run are still validated, and
    nothing is unpickled. What is no longer known is whether the files are the ones the
    run was written with.
    """
    token = _TRUSTING.set(enabled)
    try:
        yield
    finally:
        _TRUSTING.reset(token)


def trusting() -> bool:
    """True inside :func:`trust_unverified`: runs are opened without verification."""
    return _TRUSTING.get()


def _warn_unverified(folder: Path) -> None:
    if folder not in _WARNED:
        _WARNED.add(folder)
        print(
            f"warning: {folder} is opened without checking its manifest ({TRUST_FLAG}): "
            "its files may not be the ones it was written with",
            file=sys.stderr,
        )


def sha256(path: Path) -> str:
    """The file's sha256, read in chunks; remembered per (inode, size, mtime) for this process."""
    status = path.stat()
    key = (str(path.resolve()), status.st_ino, status.st_size, status.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def inside(root: Path, path: Path, what: str = "") -> Path:
    """``path`` resolved (symlinks followed); refused when it lies outside ``root``."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise UnverifiedRunError(
            f"{path}{what} points outside the run directory {root} (to {resolved}): a run's files "
            "must lie inside it; this run is refused"
        )
    return resolved


def files_of(folder: Path, skip: Iterable[str] = ()) -> list[str]:
    """Every file under ``folder`` (relative POSIX paths, sorted), ``skip``'s top-level entries aside.

    A symlink is listed as the file it is; one that leads outside ``folder`` is refused.
    """
    skip = set(skip)
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        if here == folder:
            dirs[:] = [d for d in dirs if d not in skip]
            names = [n for n in names if n not in skip]
        for name in [*names, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            if path.is_symlink():
                inside(folder, path)
            found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def write_manifest(folder: Path, skip: Iterable[str] = ()) -> None:
    """Record every file under ``folder`` (relative path -> sha256, bytes), signed when a key is set."""
    files = {
        name: {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in files_of(folder, skip)
        if name != MANIFEST
    }
    entries = {"format": FORMAT, "files": files}
    signature = signing.sign(entries)
    data = entries if signature is None else {**entries, "signature": signature}
    write_text_atomic(folder / MANIFEST, json.dumps(data, indent=2) + "\n")


def write_run_manifest(run_dir: Path) -> None:
    """The run directory's own manifest: every file of the run but ``report/``."""
    write_manifest(run_dir, NOT_RECORDED)


def _safe_name(name: object, where: Path) -> str:
    """A manifest entry must be a relative path inside its folder (no ``..``, not absolute)."""
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if not parts or name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0]:
        raise UnverifiedRunError(f"{where} lists {name!r}, which is not a path inside the run: the run is refused")
    return name


def recorded(folder: Path) -> dict[str, dict[str, object]]:
    """The entries of ``folder``'s manifest, its signature checked; refused when there is none."""
    path = folder / MANIFEST
    if not path.is_file():
        raise UnverifiedRunError(
            f"{path} is missing: the files of {folder} cannot be verified (written before shopmtl "
            "recorded every file, or the manifest was removed); restore it from a copy of the run, "
            f"or open the run unchecked with {TRUST_FLAG} if you trust its source (see docs/security.md)"
        )
    data = read_json_file(path)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != FORMAT:
        raise UnverifiedRunError(
            f"{path} is not a manifest shopmtl can check (format {FORMAT} expected): train the run "
            f"again, or open it unchecked with {TRUST_FLAG} if you trust its source"
        )
    try:
        signing.check(str(path), {"format": FORMAT, "files": files}, data.get("signature"))
    except signing.SignatureError as error:
        raise UnverifiedRunError(str(error)) from None
    for name, entry in files.items():
        _safe_name(name, path)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise UnverifiedRunError(f"{path}: the entry of {name!r} has no sha256; the run is refused")
    return files


def verify(folder: Path, skip: Iterable[str] = (), hashed: Callable[[str], bool] = lambda _: True) -> None:
    """Check ``folder`` against its manifest: nothing missing, nothing changed, nothing unlisted.

    :param skip: top-level entries the manifest does not cover (a run's ``report/``).
    :param hashed: which listed files to read and hash (the others are checked for
        presence and size only): a command that never reads the checkpoints need not
        hash them.
    """
    if trusting():
        _warn_unverified(folder)
        return
    entries = recorded(folder)
    manifest_path = folder / MANIFEST
    unlisted = [name for name in files_of(folder, skip) if name != MANIFEST and name not in entries]
    if unlisted:
        more = f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else ""
        raise UnverifiedRunError(
            f"{folder / unlisted[0]}{more} is not listed in {manifest_path}: a file added to the run "
            "after it was written is never opened; remove it, or restore the run from a copy "
            f"({TRUST_FLAG} opens the run unchecked)"
        )
    by_digest = {str(entry["sha256"]): name for name, entry in entries.items()}
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            raise CorruptRunError(f"{path} is missing (listed in {manifest_path}): {_restore_hint(path)}")
        inside(folder, path)
        size = path.stat().st_size
        if not hashed(name) and size == entry.get("bytes"):
            continue
        digest = sha256(path)
        if digest == entry["sha256"]:
            continue
        if by_digest.get(digest):
            what = f"it is a copy of {by_digest[digest]}, another file of this run (a foreign file)"
        elif size != entry.get("bytes"):
            what = f"it is truncated or was replaced ({size} bytes, {entry.get('bytes')} when written)"
        else:
            what = "its bytes changed since it was written (corrupt or tampered with)"
        raise CorruptRunError(
            f"{path} does not match the sha256 recorded in {manifest_path}: {what}; {_restore_hint(path)}"
        )


def verify_run(run_dir: Path, checkpoints: bool = False) -> None:
    """Check a whole run directory against its manifest before anything of it is read.

    :param checkpoints: hash ``checkpoints/`` too (``--resume``); other commands only
        check that its files are the listed ones, of the listed sizes.
    """
    verify(Path(run_dir), NOT_RECORDED, lambda name: checkpoints or not name.startswith("checkpoints/"))


def task_name(name: object, where: Path) -> str:
    """``name``, read from ``where`` (a JSON file or a file name of a run), if it is a task name.

    Task names become file names (``heads/<task>.safetensors``, ``priors/<task>...``), so
    a name such as ``../../x`` read from a run would reach outside it.
    """
    from shopmtl.registry.validation import NAME_PATTERN

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise UnverifiedRunError(
            f"{where} names a task {name!r}, which is not a task name (lower-case letters, digits "
            "and _, starting with a letter): the run is refused"
        )
    return name


def read_json_file(path: Path) -> object:
    """A JSON file of a run, or one line naming it when it is truncated or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptRunError(f"{path} is missing: {_restore_hint(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRunError(f"{path} is truncated or not JSON ({error}): {_restore_hint(path)}") from None


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
