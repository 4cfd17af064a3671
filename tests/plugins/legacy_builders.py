"""The built-in builders' data access as it was before the DuckDB engine (commit ee83c8d):
per-task pandas over the whole cleaned table. Kept verbatim as the oracle that the columnar
builders are checked against (tests/plugins/test_columnar_builders.py): same rows, same values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from shopmtl import BuildContext, TaskData
from shopmtl.plugins.price_bin import price_class
from shopmtl.plugins.recommend import RecommendSettings, _draw_rows, _Universe
from shopmtl.plugins.sales import LAG_COLUMNS, N_LAGS, SalesSettings, week_start
from shopmtl.plugins.shared import retail
from shopmtl.plugins.shared.customers import customer_profiles
from shopmtl.plugins.user_profile import LABELS, UserProfileSettings, label_matrix


def build_sales(ctx: BuildContext) -> TaskData:
    """The ``sales`` rows of the context's file, split by week."""
    settings: SalesSettings = ctx.settings or SalesSettings()
    first, (val_start, val_end), (test_start, last), (price_start, price_end) = settings.weeks()
    clean = retail.load_transactions(ctx.data_path, ctx.column_map)
    rows = pd.DataFrame(
        {
            "stock_code": clean["stock_code"],
            "week": week_start(clean["invoice_date"]),
            "quantity": clean["quantity"],
            "unit_price": clean["unit_price"],
        }
    )

    # Products with a row: a first sale on or before the last week (a product first sold in
    # the dropped partial week has none).
    first_sale = rows.groupby("stock_code")["week"].min()
    first_sale = first_sale[first_sale <= last].sort_index()
    products = first_sale.index

    # Dense (product x week) matrix of units, from N_LAGS weeks before `first` to `last`;
    # weeks with no sale (and weeks before the first sale) hold 0, as the lags require.
    weeks = pd.date_range(first - pd.Timedelta(weeks=N_LAGS), last, freq="7D")
    in_range = rows["week"].between(weeks[0], weeks[-1]) & rows["stock_code"].isin(products)
    weekly = rows[in_range].groupby(["stock_code", "week"])["quantity"].sum()
    units = np.zeros((len(products), len(weeks)))
    product_row = products.get_indexer(weekly.index.get_level_values("stock_code"))
    week_column = weeks.get_indexer(weekly.index.get_level_values("week"))
    units[product_row, week_column] = weekly.to_numpy()
    log_units = np.log1p(units)

    # Row (product p, week j) exists from max(first sale, first) onwards.
    row_weeks = weeks[N_LAGS:]
    start = np.maximum(first_sale.to_numpy(), np.datetime64(first))
    p_idx, w_idx = np.nonzero(row_weeks.to_numpy()[None, :] >= start[:, None])
    j = w_idx + N_LAGS  # column in `weeks`
    price = _median_price(rows, price_start, price_end)
    descriptions = retail.product_descriptions(clean)

    frame = pd.DataFrame(
        {
            "stock_code": products.to_numpy()[p_idx],
            "week": row_weeks.to_numpy()[w_idx],
            "description": descriptions.reindex(products).to_numpy()[p_idx],
            **{col: log_units[p_idx, j - k] for k, col in enumerate(LAG_COLUMNS, start=1)},
            "median_price": price.reindex(products).to_numpy(dtype=float)[p_idx],
            "label": log_units[p_idx, j],
        }
    )
    week = frame["week"]
    split = np.select(
        [week.between(test_start, last), week.between(val_start, val_end), week < val_start],
        ["test", "val", "train"],
        default="",  # weeks between val and test when they are not adjacent: no split
    )
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=(str(retail.transactions_path(ctx.data_path)),),
    )


def _median_price(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Median UnitPrice over each product's rows in weeks ``start`` ... ``end``."""
    in_weeks = rows["week"].between(start, end)
    return rows[in_weeks].groupby("stock_code")["unit_price"].median()


def build_price_bin(ctx: BuildContext) -> TaskData:
    """One row per product of the context's file, split by product key."""
    clean = retail.load_transactions(ctx.data_path, ctx.column_map)
    median = clean.groupby("stock_code")["unit_price"].median().sort_index()
    descriptions = retail.product_descriptions(clean).reindex(median.index)
    frame = pd.DataFrame(
        {
            "stock_code": median.index.to_numpy(),
            "description": descriptions.to_numpy(),
            "label": price_class(median.to_numpy()).astype(float),
        }
    )
    split = retail.split_products(frame["stock_code"]).to_numpy()
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=(str(retail.transactions_path(ctx.data_path)),),
    )


def build_user_profile(ctx: BuildContext) -> TaskData:
    """One row per customer of the context's file, split by customer key."""
    settings: UserProfileSettings = ctx.settings or UserProfileSettings()
    cutoff = pd.Timestamp(settings.cutoff)
    customers = retail.customer_rows(retail.load_transactions(ctx.data_path, ctx.column_map))
    profiles = customer_profiles(customers, cutoff)

    # Label words per product once (a few thousand descriptions), then OR them per customer.
    after = customers.loc[
        customers["invoice_date"] >= cutoff, ["customer_id", "stock_code", "product_description"]
    ]
    after = after.drop_duplicates(["customer_id", "stock_code"])
    products = after.drop_duplicates("stock_code")
    product_labels = pd.DataFrame(
        label_matrix(products["product_description"]), index=products["stock_code"], columns=LABELS
    )
    bought = pd.DataFrame(product_labels.reindex(after["stock_code"]).to_numpy(), columns=LABELS)
    bought["customer_id"] = after["customer_id"].to_numpy()
    labels = bought.groupby("customer_id").max().reindex(profiles["customer_id"])

    frame = pd.concat(
        [profiles, pd.DataFrame(labels.to_numpy(dtype=float), columns=list(LABELS))], axis=1
    )
    split = retail.split_customers(frame["customer_id"]).to_numpy()
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=(str(retail.transactions_path(ctx.data_path)),),
    )


def build_recommend(ctx: BuildContext) -> TaskData:
    """Customer-product rows of the context's file, split by customer key, with ranking candidates."""
    settings: RecommendSettings = ctx.settings or RecommendSettings()
    universe = _universe(ctx, pd.Timestamp(settings.cutoff))
    customer, product, label = _draw_rows(universe, settings)
    frame = universe.pair_rows(customer, product, label)
    split = retail.split_customers(universe.profiles["customer_id"]).to_numpy()
    row_split = split[customer]
    splits = {s: frame[row_split == s].reset_index(drop=True) for s in ("train", "val", "test")}
    ranking = {
        s: _ranking_frame(universe, settings, np.flatnonzero(split == s)) for s in ("val", "test")
    }
    return TaskData(
        splits=splits,
        extras={"pool": universe.pool, "ranking": ranking},
        sources=(str(retail.transactions_path(ctx.data_path)),),
    )


def _universe(ctx: BuildContext, cutoff: pd.Timestamp) -> _Universe:
    customers = retail.customer_rows(retail.load_transactions(ctx.data_path, ctx.column_map))
    profiles = customer_profiles(customers, cutoff)
    before = customers[customers["invoice_date"] < cutoff]
    after = customers[customers["invoice_date"] >= cutoff]

    # Pool: every product with a known buyer before the cutoff (any customer, not only
    # the task's), sorted by StockCode; popularity = its distinct buyers.
    popularity = before.groupby("stock_code")["customer_id"].nunique().sort_index()
    # Every row carries its product's description (over all cleaned rows), so any row will do.
    names = before.drop_duplicates("stock_code").set_index("stock_code")["product_description"]
    pool = pd.DataFrame(
        {
            "stock_code": popularity.index.to_numpy(),
            "description": names.reindex(popularity.index).to_numpy(),
            "popularity": popularity.to_numpy(dtype=np.int64),
        }
    )

    row_of = pd.Series(np.arange(len(profiles)), index=profiles["customer_id"].to_numpy())
    position_of = pd.Series(np.arange(len(pool)), index=pool["stock_code"].to_numpy())

    # Positives: distinct (customer, pool product) on/after the cutoff. Products first sold
    # after it are out: they could never be negatives, so they would leak the label.
    bought = after[
        after["customer_id"].isin(row_of.index) & after["stock_code"].isin(position_of.index)
    ]
    pairs = (
        pd.DataFrame(
            {
                "row": row_of.reindex(bought["customer_id"].to_numpy()).to_numpy(),
                "position": position_of.reindex(bought["stock_code"].to_numpy()).to_numpy(),
            }
        )
        .drop_duplicates()
        .sort_values(["row", "position"])
    )
    starts = np.searchsorted(pairs["row"].to_numpy(), np.arange(len(profiles) + 1))
    position = pairs["position"].to_numpy()
    positives = [position[starts[i] : starts[i + 1]] for i in range(len(profiles))]

    # Inputs: distinct invoices per (customer, product) before the cutoff, distinct products per customer.
    mine = before[before["customer_id"].isin(row_of.index)]
    key = (
        row_of.reindex(mine["customer_id"].to_numpy()).to_numpy() * len(pool)
        + position_of.reindex(mine["stock_code"].to_numpy()).to_numpy()
    )
    invoices = (
        pd.DataFrame({"key": key, "invoice": mine["invoice"].to_numpy()})
        .groupby("key")["invoice"]
        .nunique()
    )
    history_size = (
        mine.groupby("customer_id")["stock_code"].nunique().reindex(profiles["customer_id"])
    )
    history_size = history_size.fillna(0).to_numpy(dtype=np.int64)
    return _Universe(profiles, pool, positives, invoices, history_size)


# The ranking candidates as drawn before they were kept as compact arrays and handed over in blocks
# (plugins/recommend.py, commit 11513d2): one frame per split, on the same seeded stream.
def _ranking_frame(
    universe: _Universe, settings: RecommendSettings, rows: np.ndarray
) -> pd.DataFrame:
    """Each positive of these customers with its ranking negatives, on a fresh seeded stream."""
    rng = np.random.default_rng(settings.ranking_seed)
    customer, product, label, query = [], [], [], []
    n_query = 0
    for row in rows:  # ascending customer id, then StockCode (pool order): TASKS.md's order
        if len(universe.positives[row]) == 0:
            continue
        candidates, p = universe.candidates(row)
        size = min(settings.ranking_negatives, len(candidates))
        for positive in universe.positives[row]:
            negatives = rng.choice(candidates, size=size, replace=False, p=p)
            customer.append(np.full(size + 1, row))
            product.append(np.concatenate([[positive], negatives]))
            label.append(np.concatenate([[1.0], np.zeros(size)]))
            query.append(np.full(size + 1, n_query))
            n_query += 1
    if not customer:
        empty = np.zeros(0, dtype=np.int64)
        frame = universe.pair_rows(empty, empty, empty.astype(float))
        return frame.assign(query=empty)
    frame = universe.pair_rows(
        np.concatenate(customer), np.concatenate(product).astype(np.int64), np.concatenate(label)
    )
    frame["query"] = np.concatenate(query)
    return frame
