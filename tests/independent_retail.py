"""TASKS.md's cleaning written out plainly with pandas, independent of shopmtl's loader.

The data tests recount everything from the raw shared file through this, so a bug in
``plugins/retail.py`` cannot hide by being repeated in the check.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RAW_2011 = SHARED_DATA / "online_retail_2010_2011.parquet"
RAW_2010 = SHARED_DATA / "online_retail_ii_2009_2010.parquet"

_FEES = {"POST", "DOT", "M", "C2", "D", "S", "B", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"}


def independent_clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Rows TASKS.md keeps, with StockCode upper-cased/stripped and Description stripped."""
    codes = raw["StockCode"].astype(str).str.strip().str.upper()
    text = raw["Description"].astype(str).str.strip()
    keep = (
        (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & ~raw["InvoiceNo"].astype(str).str.startswith("C")
        & raw["Description"].notna()
        & (text != "nan")
        & ~codes.isin(_FEES)
        & ~codes.str.startswith(("ADJUST", "TEST", "GIFT_"))
    )
    out = raw[keep].copy()
    out["StockCode"], out["Description"] = codes[keep], text[keep]
    return out
