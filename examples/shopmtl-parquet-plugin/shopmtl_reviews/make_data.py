"""Write the bundled Parquet splits (run once by the example's author; the files are committed).

``python -m shopmtl_reviews.make_data`` rewrites ``data/``: 900 synthetic reviews, train as
three files of 200 rows (a split may be a folder of files), val and test as one file each.
A review's rating follows its words, its category and its price, so a model can learn it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).parent / "data"
GOOD = ["lovely", "sturdy", "perfect", "beautiful", "great"]
BAD = ["broken", "flimsy", "late", "faded", "cheap"]
THINGS = ["mug", "bag", "candle", "lantern", "card", "cushion"]
CATEGORIES = ["kitchen", "decor", "gifts"]


def reviews(n: int, seed: int) -> pd.DataFrame:
    """``n`` reviews: text, category, price (missing on some rows) and a 1-5 star rating."""
    rng = np.random.default_rng(seed)
    good = rng.integers(0, 3, n)  # good words out of two
    words = [
        " ".join([*rng.choice(GOOD, g), *rng.choice(BAD, 2 - g), rng.choice(THINGS)]) for g in good
    ]
    category = rng.choice(CATEGORIES, n)
    price = np.round(rng.lognormal(2.0, 0.6, n), 2)
    rating = 1 + 2 * good + (category == "gifts") - (price > 15) + rng.normal(0, 0.4, n)
    return pd.DataFrame(
        {
            "review_id": np.arange(n) + 1_000 * seed,
            "review": words,
            "category": category,
            "price": np.where(rng.random(n) < 0.1, np.nan, price),  # nullable: a missing price
            "rating": np.clip(np.round(rating), 1, 5),
        }
    )


def main() -> None:
    (DATA / "train").mkdir(parents=True, exist_ok=True)
    for k in range(3):
        reviews(200, seed=k + 1).to_parquet(DATA / "train" / f"part-{k}.parquet", index=False)
    reviews(150, seed=10).to_parquet(DATA / "val.parquet", index=False)
    reviews(150, seed=11).to_parquet(DATA / "test.parquet", index=False)


if __name__ == "__main__":
    main()
