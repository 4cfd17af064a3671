"""Token ids on disk, keyed by text and tokenizer: a text is tokenized once, across runs.

A folder per tokenizer (``$SHOPMTL_CACHE_DIR/tokens/<key>/``; the key hashes the
tokenizer's full definition and the truncation length) holds segments: Arrow IPC files of
``(sha1 of the text, token ids)``. A run reads every segment memory-mapped, tokenizes only
the texts none of them holds, and adds those as one new segment.

Never stale: a text is found by its own hash, so a changed text is a new entry; another
tokenizer or length is another folder; each segment carries its folder's key, and one whose
key differs (a folder copied by hand) is an error naming the file and the fix. Safe against
interruption: a segment is written under a temporary name and renamed into place, so a
killed run leaves no file that a later run reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the segment layout changes: older folders are then never read.
FORMAT_VERSION = 1
_KEY_FIELD = b"shopmtl.tokenizer_key"


class TokenCacheError(RuntimeError):
    """A cache segment that cannot be trusted; the message names the file and the fix."""


def tokenizer_key(tokenizer: Any, max_length: int) -> str:
    """A hash of everything that decides a text's ids: the tokenizer's definition and the length."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The fast tokenizer's JSON also records the truncation and padding of its last call,
        # which are not part of what it is (max_length is keyed below): left out.
        spec = {
            k: v
            for k, v in json.loads(backend.to_str()).items()
            if k not in ("truncation", "padding")
        }
        definition = json.dumps(spec, sort_keys=True)
    else:
        definition = json.dumps(sorted(tokenizer.get_vocab().items()))
    special = json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str)
    parts = [type(tokenizer).__name__, definition, special, str(max_length), str(FORMAT_VERSION)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def text_key(text: str) -> bytes:
    """The 20-byte key of one text."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()


class TokenCache:
    """The segments of one tokenizer's folder: lookups and one new segment per run."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder, self.key = folder, key
        self._index: dict[bytes, np.ndarray] = {}
        self.hits = self.misses = 0
        if folder.is_dir():
            for path in sorted(folder.glob("segment-*.arrow")):
                self._load(path)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, max_length: int, root: Path) -> TokenCache:
        """The cache of ``tokenizer`` truncating at ``max_length``, under ``root``."""
        key = tokenizer_key(tokenizer, max_length)
        return cls(root / "tokens" / key, key)

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, texts: Sequence[str]) -> tuple[list[np.ndarray | None], list[bytes]]:
        """Each text's cached ids (``None`` when absent) and each text's key."""
        keys = [text_key(t) for t in texts]
        found = [self._index.get(k) for k in keys]
        hit = sum(f is not None for f in found)
        self.hits, self.misses = self.hits + hit, self.misses + len(found) - hit
        return found, keys

    def store(self, keys: Sequence[bytes], tokens: Sequence[np.ndarray]) -> None:
        """Add ``(key, ids)`` pairs as one new segment, written atomically."""
        if not keys:
            return
        import pyarrow as pa

        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = np.concatenate(tokens).astype(np.int32) if len(tokens) else np.zeros(0, np.int32)
        table = pa.table(
            {
                "key": pa.array(list(keys), type=pa.binary(20)),
                "tokens": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values)),
            }
        ).replace_schema_metadata({_KEY_FIELD: self.key.encode()})
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".segment-", suffix=".tmp", dir=self.folder)
        os.close(handle)
        try:
            with pa.OSFile(name, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            target = (
                self.folder
                / f"segment-{hashlib.sha1(b''.join(keys), usedforsecurity=False).hexdigest()[:16]}.arrow"
            )
            os.replace(name, target)
        finally:
            Path(name).unlink(missing_ok=True)
        for key, ids in zip(keys, tokens):
            self._index[key] = np.asarray(ids, dtype=np.int32)

    def _load(self, path: Path) -> None:
        import pyarrow as pa

        try:
            table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        except (OSError, pa.ArrowInvalid) as error:
            raise TokenCacheError(
                f"token cache segment {path} is unreadable ({error}); delete it (or its "
                f"folder {self.folder}) and run again: the texts are tokenized anew"
            ) from None
        stored = (table.schema.metadata or {}).get(_KEY_FIELD, b"").decode()
        if stored != self.key:
            raise TokenCacheError(
                f"token cache segment {path} belongs to tokenizer key {stored or '(none)'}, not "
                f"{self.key} (the folder's): it was copied or moved by hand. Delete {self.folder} "
                "and run again"
            )
        tokens = table.column("tokens").combine_chunks()
        offsets, values = (
            tokens.offsets.to_numpy(),
            tokens.values.to_numpy(),
        )  # views of the mapped file
        for k, key in enumerate(table.column("key").to_pylist()):
            self._index[key] = values[offsets[k] : offsets[k + 1]]
