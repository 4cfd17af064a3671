"""What a plugin author tests: the task passes shopmtl's checks, and builds on a tiny file."""

from __future__ import annotations

import numpy as np
import pandas as pd
from shopmtl import BuildContext, EvalBatch, validate_task
from shopmtl_basket.plugin import BASKET_SIZE, BasketSettings, register_tasks


def test_task_passes_shopmtl_checks():
    assert validate_task(BASKET_SIZE) == []


def test_register_tasks_registers_basket_size():
    seen = []
    register_tasks(seen.append)
    assert [t.name for t in seen] == ["basket_size"]


def test_builds_from_a_csv(tmp_path):
    rows = []
    for i in range(40):
        invoice = str(500000 + i)
        for j in range(1 + i % 5):
            rows.append(
                [invoice, f"2{j}000", f"PRODUCT {j}", 1, "2011-01-03 10:00", 1.5, 12345.0, "France"]
            )
    columns = [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    path = tmp_path / "lines.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)

    data = BASKET_SIZE.build_dataset(BuildContext(settings=BasketSettings(), data_path=str(path)))

    frames = [data[s] for s in ("train", "val", "test")]
    assert sum(len(f) for f in frames) == 40
    every = pd.concat(frames).set_index("invoice")
    assert np.isclose(every.loc["500004", "label"], np.log1p(5))
    assert set(BASKET_SIZE.columns) <= set(every.reset_index().columns)
    train = data["train"]
    batch = EvalBatch(
        split="val",
        frame=train,
        predictions=train[["label"]].to_numpy(),
        labels=train[["label"]].to_numpy(),
        score=lambda f: np.zeros((len(f), 1)),
    )
    assert BASKET_SIZE.metrics(batch)["rmse"] == 0.0
