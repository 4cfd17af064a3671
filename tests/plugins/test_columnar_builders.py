"""The DuckDB builders give exactly the tables the pandas builders gave (tests/plugins/legacy_builders.py),
on the bundled data: every split, every column, every value and dtype; recommend's pool and ranking too."""

from __future__ import annotations

import pandas as pd
import pytest
from legacy_builders import build_price_bin, build_recommend, build_sales, build_user_profile
from shopmtl import BuildContext, TaskData
from shopmtl.plugins.shared import retail

SPLITS = ("train", "val", "test")
LEGACY = {
    "sales": build_sales,
    "price_bin": build_price_bin,
    "user_profile": build_user_profile,
    "recommend": build_recommend,
}


def test_sql_cleaning_equals_the_pandas_cleaning() -> None:
    """One table, two engines: DuckDB's cleaning (the cache every builder reads) and clean_transactions."""
    pandas_clean = retail.clean_transactions(retail.read_transactions())
    pd.testing.assert_frame_equal(retail.load_transactions(), pandas_clean, check_exact=True)


@pytest.mark.parametrize("task", sorted(LEGACY))
def test_builder_output_is_unchanged(task: str, datasets: dict[str, TaskData]) -> None:
    from builtin_reference import SPECS

    legacy = LEGACY[task](BuildContext(settings=SPECS[task].settings()))
    new = datasets[task]
    for split in SPLITS:
        assert len(new[split]) > 0
        pd.testing.assert_frame_equal(new[split], legacy[split], check_exact=True)
    assert new.sources == legacy.sources
    if task == "recommend":
        pd.testing.assert_frame_equal(new.extras["pool"], legacy.extras["pool"], check_exact=True)
        for split in ("val", "test"):
            pd.testing.assert_frame_equal(
                new.extras["ranking"][split], legacy.extras["ranking"][split], check_exact=True
            )


def test_ranking_candidates_are_drawn_on_first_use(datasets: dict[str, TaskData]) -> None:
    """`shopmtl data` never pays for them; reading one split draws that split only, once."""
    from shopmtl.plugins.recommend import RECOMMEND, RecommendSettings

    data = RECOMMEND.build_dataset(BuildContext(settings=RecommendSettings()))
    ranking = data.extras["ranking"]
    assert sorted(ranking) == ["test", "val"] and "built: none" in repr(ranking)
    first = ranking["val"]
    assert ranking["val"] is first and "built: val)" in repr(ranking)
    assert ranking.get("train") is None
