"""`data.path` as a folder or glob of Parquet files, and each bad input named with its fix;
the cleaned-table cache is rebuilt when an input changes and never trusted half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from shopmtl import BuildContext
from shopmtl.plugins.price_bin import PRICE_BIN, PriceBinSettings
from shopmtl.plugins.shared import retail, warehouse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def head() -> pd.DataFrame:
    """The first 20,000 raw lines of the bundled file."""
    return pd.read_parquet(retail.DEFAULT_DATA_PATH).head(20_000)


def write_parts(folder: Path, frame: pd.DataFrame, parts: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(frame) // parts)
    paths = []
    for k in range(parts):
        path = folder / f"part-{k}.parquet"
        frame.iloc[k * size : (k + 1) * size].to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_a_folder_and_a_glob_read_as_the_single_file(tmp_path: Path, head: pd.DataFrame) -> None:
    single = tmp_path / "one.parquet"
    head.to_parquet(single, index=False)
    write_parts(tmp_path / "parts" / "nested", head)
    expected = retail.load_transactions(single)
    for spec in (tmp_path / "parts", str(tmp_path / "parts" / "**" / "part-*.parquet")):
        got = retail.load_transactions(spec)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)  # same rows, in file order
        assert len(retail.transactions_files(spec)) == 3
    built = PRICE_BIN.build_dataset(
        BuildContext(settings=PriceBinSettings(), data_path=str(tmp_path / "parts"))
    )
    reference = PRICE_BIN.build_dataset(
        BuildContext(settings=PriceBinSettings(), data_path=str(single))
    )
    pd.testing.assert_frame_equal(built["train"], reference["train"], check_exact=True)
    assert [Path(p).name for p in built.sources] == [
        "part-0.parquet",
        "part-1.parquet",
        "part-2.parquet",
    ]


def test_a_glob_that_matches_nothing_names_the_pattern(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no_such_\*\.parquet.*matches no file"):
        retail.load_transactions(str(tmp_path / "no_such_*.parquet"))


def test_a_folder_without_parquet_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(ValueError, match="folder without .parquet files"):
        retail.load_transactions(tmp_path)


def test_mixed_schemas_name_both_files(tmp_path: Path, head: pd.DataFrame) -> None:
    first, second, _ = write_parts(tmp_path, head)
    pd.read_parquet(second).rename(columns={"Country": "Land"}).to_parquet(second, index=False)
    with pytest.raises(ValueError) as info:
        retail.load_transactions(tmp_path)
    message = str(info.value)
    assert "part-1.parquet" in message
    assert "Country" in message or "Land" in message
    pd.read_parquet(first).assign(Quantity=lambda f: f["Quantity"].astype(float)).to_parquet(
        first, index=False
    )
    pd.read_parquet(second).rename(columns={"Land": "Country"}).to_parquet(second, index=False)
    with pytest.raises(ValueError, match=r"mixes schemas: column 'Quantity' is"):
        retail.load_transactions(tmp_path)


def test_a_file_missing_a_mapped_column_is_named_with_the_fix(
    tmp_path: Path, head: pd.DataFrame
) -> None:
    _, second, _ = write_parts(tmp_path, head.rename(columns={"InvoiceNo": "Invoice"}))
    pd.read_parquet(second).drop(columns=["Invoice"]).to_parquet(second, index=False)
    with pytest.raises(ValueError) as info:
        retail.load_transactions(tmp_path, {"InvoiceNo": "Invoice"})
    assert "part-1.parquet" in str(info.value) and "data.columns.InvoiceNo=" in str(info.value)


def test_csv_mixed_with_parquet_is_refused(tmp_path: Path, head: pd.DataFrame) -> None:
    head.head(10).to_parquet(tmp_path / "a.parquet", index=False)
    head.head(10).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ValueError, match="mixes CSV and Parquet"):
        retail.load_transactions(str(tmp_path / "*"))


def test_an_edited_file_gets_a_new_cleaned_table(tmp_path: Path, head: pd.DataFrame) -> None:
    path = tmp_path / "shop.parquet"
    head.head(1_000).to_parquet(path, index=False)
    before = retail.cleaned_table(path)
    head.head(2_000).to_parquet(path, index=False)
    after = retail.cleaned_table(path)
    assert after.rows != before.rows
    assert len(pd.read_parquet(after.rows)) > len(pd.read_parquet(before.rows))


def test_a_half_written_cache_is_never_read(tmp_path: Path, head: pd.DataFrame) -> None:
    """An interrupted build leaves at most a temporary file; the next run rebuilds."""
    path = tmp_path / "shop.parquet"
    head.head(1_000).to_parquet(path, index=False)
    table = retail.cleaned_table(path)
    expected = pd.read_parquet(table.rows)
    table.products.unlink()  # as if killed between the two files
    (table.rows.parent / ".products.parquet.12345.tmp").write_bytes(b"half a file")
    table.rows.write_bytes(b"garbage from an older, interrupted build")
    rebuilt = retail.cleaned_table(path)
    pd.testing.assert_frame_equal(pd.read_parquet(rebuilt.rows), expected)


def test_unreadable_values_are_named(tmp_path: Path, head: pd.DataFrame) -> None:
    path = tmp_path / "shop.parquet"
    head.head(10).assign(Quantity="many").to_parquet(path, index=False)
    with pytest.raises(ValueError, match=r"shop\.parquet.*Quantity must be whole numbers"):
        retail.cleaned_table(path)


def test_the_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPMTL_CACHE_DIR", str(tmp_path / "cache"))
    assert warehouse.cache_root() == tmp_path / "cache"


def test_processes_starting_together_clean_the_data_once(
    tmp_path: Path, head: pd.DataFrame
) -> None:
    """A multi-process run's processes all ask for the cleaned table at once: one builds it."""
    import json
    import os
    import subprocess
    import sys

    data = tmp_path / "data.parquet"
    head.to_parquet(data, index=False)
    child = f"""
import json, os, sys, time
from shopmtl.plugins.shared import retail, warehouse
real = warehouse._build
def build(*args, **kwargs):
    with open({str(tmp_path / "builds.txt")!r}, 'a') as out:
        out.write(str(os.getpid()) + "\\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one builds
    return real(*args, **kwargs)
warehouse._build = build
table = retail.cleaned_table({str(data)!r})
print(json.dumps([str(table.rows), os.path.getsize(table.rows)]))
"""
    env = {**os.environ, "SHOPMTL_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen([sys.executable, "-c", child], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert outputs[0] == outputs[1]  # the same table, read by both
    assert len((tmp_path / "builds.txt").read_text().split()) == 1  # built by one of them only
