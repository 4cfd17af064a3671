"""The four built-in tasks: registration and schema, and another period read through a column map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pluggy
import pytest
from builtin_reference import CUTOFF, MAP_2010, SPECS, SPLITS
from independent_retail import RAW_2010
from shopmtl import BuildContext, DerivedFeatures, TaskData, TaskSpec
from shopmtl.core.data.features import with_derived
from shopmtl.plugins import price_bin, recommend, sales, user_profile
from shopmtl.plugins.builtin import BUILTIN_PLUGINS
from shopmtl.plugins.shared import retail
from shopmtl.registry import hookspecs
from shopmtl.registry.validation import validate_task

# --- registration and schema ----------------------------------------------------------------


def test_builtin_plugins_register_the_four_tasks() -> None:
    assert [name for name, _ in BUILTIN_PLUGINS] == [
        "sales",
        "price_bin",
        "user_profile",
        "recommend",
    ]
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS:
        manager.register(module, name=name)
    registered: list[TaskSpec] = []
    manager.hook.register_tasks(register=registered.append)
    assert sorted(t.name for t in registered) == sorted(SPECS)
    for task in registered:
        assert task is SPECS[task.name]
        assert validate_task(task) == []  # shopmtl's own registration checks, head dry run included
        assert task.primary_metric in task.metric_directions
        assert set(task.metric_directions.values()) <= {"max", "min", "info"}
        assert task.settings is not None and task.decode is not None and task.baselines is not None


def test_primary_metrics() -> None:
    assert {n: s.primary_metric for n, s in SPECS.items()} == {
        "sales": "rmse",
        "price_bin": "macro_f1",
        "user_profile": "map",
        "recommend": "auc",
    }


@pytest.mark.parametrize("name", list(SPECS))
def test_frames_hold_the_schema(datasets: dict[str, TaskData], name: str) -> None:
    spec = SPECS[name]
    for split in SPLITS:
        frame = with_derived(spec, datasets[name][split])  # user_profile's history counts
        assert set(spec.columns) <= set(frame.columns), split
        assert len(frame) > 0
        for column in (*spec.numeric, *spec.labels):
            assert frame[column].dtype == np.float64, column
        assert not frame[list(spec.keys)].duplicated().any()
        assert frame[spec.text].notna().all()
    assert datasets[name].sources == (
        str(retail.DEFAULT_DATA_PATH),
    )  # recorded in a run's environment.json


def test_settings_defaults_are_tasks_md() -> None:
    s = sales.SalesSettings()
    assert (s.first_week, s.val_weeks, s.test_weeks, s.price_weeks) == (
        "2011-01-03",
        ("2011-08-15", "2011-10-03"),
        ("2011-10-10", "2011-11-28"),
        ("2011-01-03", "2011-08-08"),
    )
    assert pd.Timestamp(user_profile.UserProfileSettings().cutoff) == CUTOFF
    r = recommend.RecommendSettings()
    assert pd.Timestamp(r.cutoff) == CUTOFF
    assert (r.negatives_per_positive, r.negative_seed, r.ranking_negatives, r.ranking_seed) == (
        4,
        0,
        99,
        1,
    )
    with pytest.raises(ValueError, match="Monday"):
        sales.SalesSettings(first_week="2011-01-04")
    with pytest.raises(ValueError):
        sales.SalesSettings(val_weeks=("2011-10-10", "2011-08-15"))
    with pytest.raises(ValueError):
        user_profile.UserProfileSettings(cutoff="not a date")


# --- another period through a column map ----------------------------------------------------


@pytest.mark.skipif(not RAW_2010.is_file(), reason="../shared/data is not available")
def test_tasks_build_on_the_2009_2010_file_a_year_earlier() -> None:
    settings = {
        "sales": sales.SalesSettings(
            first_week="2010-01-04",
            val_weeks=("2010-08-16", "2010-10-04"),
            test_weeks=("2010-10-11", "2010-11-29"),
            price_weeks=("2010-01-04", "2010-08-09"),
        ),
        "price_bin": price_bin.PriceBinSettings(),
        "user_profile": user_profile.UserProfileSettings(cutoff="2010-09-01"),
        "recommend": recommend.RecommendSettings(cutoff="2010-09-01"),
    }
    for name, spec in SPECS.items():
        data = spec.build_dataset(
            BuildContext(settings=settings[name], data_path=str(RAW_2010), column_map=MAP_2010)
        )
        for split in SPLITS:
            assert len(data[split]) > 100, (name, split)
            assert set(spec.columns) <= set(data[split].columns)
        if name == "sales":
            assert data["test"]["week"].max() == pd.Timestamp("2010-11-29")
            assert data["train"]["week"].min() == pd.Timestamp("2010-01-04")
        if name == "price_bin":
            assert (
                len(pd.concat([data[s] for s in SPLITS]))
                == retail.load_transactions(RAW_2010, MAP_2010)["stock_code"].nunique()
            )


def test_the_plugin_kit_passes_user_profile_with_its_derived_features() -> None:
    """``shopmtl plugins check`` / ``check_task`` build the dataset and check the derived
    numeric columns (which the built frame does not hold) like any other."""
    from shopmtl.testing import check_task

    assert check_task(user_profile.USER_PROFILE) == []
    broken = dataclasses.replace(
        user_profile.USER_PROFILE,
        derive=DerivedFeatures(
            user_profile.HISTORY_FEATURES, lambda frame: frame[["no_such_column"]]
        ),
    )
    problems = check_task(broken)
    assert problems and all("derive.compute failed" in p and "KeyError" in p for p in problems)


@pytest.mark.parametrize("name", ["sales", "price_bin", "user_profile", "recommend"])
def test_each_builtin_prior_reads_only_what_predict_is_given(datasets, name):
    """A prior runs at ``predict`` time on rows of the task's inputs: no labels, no identifier columns.
    Its outputs equal those on the full rows, are finite, and have the head's width."""
    spec, data = SPECS[name], datasets[name]
    train = with_derived(spec, data["train"].head(3000))
    rows = with_derived(spec, data["test"].head(500))
    inputs = rows.drop(columns=[*spec.labels, *spec.keys])
    assert spec.priors
    for prior_name, prior in spec.priors.items():
        fitted = prior.fit(train, data["val"])
        full, bare = (
            np.asarray(prior.predict(fitted, rows)),
            np.asarray(prior.predict(fitted, inputs)),
        )
        np.testing.assert_allclose(bare, full)
        assert (
            np.isfinite(bare).all() and bare.reshape(len(inputs), -1).shape[1] == spec.n_outputs
        ), prior_name
