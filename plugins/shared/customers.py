"""Customers with their purchase history: what ``user_profile`` and ``recommend`` both read.

:func:`customer_profiles` works on a pandas frame; :func:`query_profiles` computes the same
rows in DuckDB, which the built-in builders use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import duckdb

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

    last = (
        before.groupby(["customer_id", "product_description"], sort=False)["invoice_date"]
        .max()
        .reset_index()
    )
    last = last.sort_values(
        ["customer_id", "invoice_date", "product_description"],
        ascending=[True, False, True],
        kind="stable",
    )
    history = last.groupby("customer_id", sort=True)["product_description"].agg(
        HISTORY_SEPARATOR.join
    )

    countries = (
        before.groupby(["customer_id", "country"], sort=False).size().rename("n").reset_index()
    )
    countries = countries.sort_values(
        ["customer_id", "n", "country"], ascending=[True, False, True], kind="stable"
    )
    country = countries.drop_duplicates("customer_id").set_index("customer_id")["country"]

    return pd.DataFrame(
        {
            "customer_id": history.index.to_numpy(dtype="int64"),
            "history": pd.Series(history.to_numpy(), dtype=object),
            "country": country.reindex(history.index).to_numpy(),
        }
    )


def query_profiles(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> pd.DataFrame:
    """:func:`customer_profiles` computed in DuckDB over the view ``clean`` (same rows, same order).

    Leaves two names in the connection for the caller's next queries: the view
    ``customers`` (cleaned lines with a customer, ``customer_id`` BIGINT) and the table
    ``profiles`` (the returned rows).
    """
    con.execute(
        "CREATE OR REPLACE TEMP VIEW customers AS SELECT * REPLACE (CAST(trunc(customer_id) AS BIGINT) "
        "AS customer_id) FROM clean WHERE customer_id IS NOT NULL"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE profiles AS
        WITH before AS (
            SELECT * FROM customers WHERE invoice_date < $cutoff
            AND customer_id IN (SELECT customer_id FROM customers WHERE invoice_date >= $cutoff)
        ), last AS (
            SELECT customer_id, product_description, max(invoice_date) AS last FROM before
            GROUP BY customer_id, product_description
        ), history AS (
            SELECT customer_id, string_agg(product_description, '{HISTORY_SEPARATOR}'
                                           ORDER BY last DESC, product_description ASC) AS history
            FROM last GROUP BY customer_id
        ), country AS (
            SELECT customer_id, first(country ORDER BY n DESC, country ASC) AS country FROM (
                SELECT customer_id, country, count(*) AS n FROM before WHERE country IS NOT NULL
                GROUP BY customer_id, country
            ) GROUP BY customer_id
        )
        SELECT h.customer_id, h.history, c.country FROM history h LEFT JOIN country c USING (customer_id)
        ORDER BY h.customer_id
    """,
        {"cutoff": cutoff.to_pydatetime()},
    )
    found = con.execute("SELECT * FROM profiles ORDER BY customer_id").df()
    return pd.DataFrame(
        {
            "customer_id": found["customer_id"].to_numpy(dtype="int64"),
            "history": pd.Series(found["history"].to_numpy(dtype=object), dtype=object),
            "country": found["country"].to_numpy(),
        }
    )
