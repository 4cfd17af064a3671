"""TASKS.md's deterministic splits: a key's crc32 bucket decides train, val or test."""

from __future__ import annotations

import zlib

import pandas as pd


def bucket(key: str) -> int:
    """Stable bucket 0-9 of a product or customer key: ``crc32(key) % 10``."""
    return zlib.crc32(key.encode()) % 10


def split_of(key: str) -> str:
    """``"test"`` for bucket 0, ``"val"`` for bucket 1, ``"train"`` otherwise."""
    b = bucket(key)
    return "test" if b == 0 else "val" if b == 1 else "train"


def customer_key(customer_id: float | int) -> str:
    """The split key of a customer: ``str(int(CustomerID))`` (``17850.0`` -> ``"17850"``)."""
    return str(int(customer_id))


def split_products(stock_codes: pd.Series) -> pd.Series:
    """The split of each cleaned StockCode (vectorised over the distinct codes)."""
    return _split_distinct(stock_codes.astype(str))


def split_customers(customer_ids: pd.Series) -> pd.Series:
    """The split of each customer id (numeric), keyed on ``str(int(id))``."""
    return _split_distinct(customer_ids.astype("int64").astype(str))


def _split_distinct(keys: pd.Series) -> pd.Series:
    # Hash each distinct key once: a few thousand crc32 calls instead of one per row.
    distinct = pd.unique(keys.to_numpy())
    table = pd.Series([split_of(k) for k in distinct], index=distinct)
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, name="split")
