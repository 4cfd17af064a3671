"""Customers with their purchase history: what ``user_profile`` and ``recommend`` both read."""

from __future__ import annotations

import pandas as pd

HISTORY_SEPARATOR = " ; "  # joins a customer's product descriptions into one text


def customer_profiles(customers: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The customers of ``user_profile``/``recommend``, with their history and country.

    Args:
        customers: :func:`retail.customer_rows` of the cleaned table.
        cutoff: rows before it are history; a customer needs rows on both sides of it.

    Returns:
        One row per customer with a purchase before and on/after ``cutoff``, ascending
        ``customer_id`` (int64): ``history`` (the distinct product descriptions bought
        before the cutoff, by last purchase newest first, ties alphabetical, joined with
        ``" ; "``; ``object`` dtype so frames that repeat it share one string) and
        ``country`` (most frequent by rows before the cutoff, ties alphabetical).
    """
    before = customers[customers["invoice_date"] < cutoff]
    after_ids = customers.loc[customers["invoice_date"] >= cutoff, "customer_id"].unique()
    before = before[before["customer_id"].isin(after_ids)]

    last = before.groupby(["customer_id", "product_description"], sort=False)["invoice_date"].max().reset_index()
    last = last.sort_values(
        ["customer_id", "invoice_date", "product_description"], ascending=[True, False, True], kind="stable"
    )
    history = last.groupby("customer_id", sort=True)["product_description"].agg(HISTORY_SEPARATOR.join)

    countries = before.groupby(["customer_id", "country"], sort=False).size().rename("n").reset_index()
    countries = countries.sort_values(["customer_id", "n", "country"], ascending=[True, False, True], kind="stable")
    country = countries.drop_duplicates("customer_id").set_index("customer_id")["country"]

    return pd.DataFrame(
        {
            "customer_id": history.index.to_numpy(dtype="int64"),
            "history": pd.Series(history.to_numpy(), dtype=object),
            "country": country.reindex(history.index).to_numpy(),
        }
    )
