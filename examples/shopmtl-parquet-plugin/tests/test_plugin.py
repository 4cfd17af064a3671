"""The plugin's own tests, with shopmtl's test kit: the check a run makes, then a short training."""

from shopmtl.testing import check_task, train_briefly
from shopmtl_reviews.plugin import DATA, REVIEW_RATING


def test_the_bundled_splits_are_in_the_package():
    assert len(list((DATA / "train").glob("*.parquet"))) == 3
    assert (DATA / "val.parquet").is_file() and (DATA / "test.parquet").is_file()


def test_the_task_passes_the_check_train_runs():
    assert check_task(REVIEW_RATING) == []


def test_it_trains_briefly():
    result = train_briefly(REVIEW_RATING)
    assert "mae" in result.metrics["tasks"]["review_rating"]["test"]
