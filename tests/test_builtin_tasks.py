"""The four built-in tasks against TASKS.md: reference row counts and figures, plus counts
recomputed here with plain pandas from the raw file (independently of the plugins' code)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import zlib

import numpy as np
import pandas as pd
import pluggy
import pytest

from shopmtl import BuildContext, DerivedFeatures, EvalBatch, TaskData, TaskSpec
from shopmtl.plugins import price_bin, recommend, retail, sales, user_profile
from shopmtl.core.data.features import with_derived
from shopmtl.plugins.builtin import BUILTIN_PLUGINS
from shopmtl.registry import hookspecs
from shopmtl.registry.validation import validate_task

from independent_retail import RAW_2010, RAW_2011, independent_clean
MAP_2010 = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
SPLITS = ("train", "val", "test")
CUTOFF = pd.Timestamp("2011-09-01")
SPECS = {spec.name: spec for spec in (sales.SALES, price_bin.PRICE_BIN, user_profile.USER_PROFILE, recommend.RECOMMEND)}


# --- independent reference computations (plain pandas, no plugin code) ---------------------


def split_of(key: str) -> str:
    b = zlib.crc32(key.encode()) % 10
    return "test" if b == 0 else "val" if b == 1 else "train"


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """TASKS.md's cleaning of the raw shared file, written out plainly."""
    if not RAW_2011.is_file():
        pytest.skip("../shared/data is not available")
    out = independent_clean(pd.read_parquet(RAW_2011))
    out["week"] = out["InvoiceDate"].dt.to_period("W-SUN").dt.start_time
    return out


@pytest.fixture(scope="module")
def names(clean: pd.DataFrame) -> dict[str, str]:
    """Product description: most frequent, ties alphabetical."""
    counts = clean.groupby(["StockCode", "Description"]).size().reset_index(name="n")
    counts = counts.sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
    return dict(counts.drop_duplicates("StockCode")[["StockCode", "Description"]].to_numpy())


@pytest.fixture(scope="module")
def people(clean: pd.DataFrame) -> pd.DataFrame:
    rows = clean[clean["CustomerID"].notna()].copy()
    rows["CustomerID"] = rows["CustomerID"].astype(int)
    return rows


@pytest.fixture(scope="module")
def eligible(people: pd.DataFrame) -> list[int]:
    before = set(people.loc[people["InvoiceDate"] < CUTOFF, "CustomerID"])
    after = set(people.loc[people["InvoiceDate"] >= CUTOFF, "CustomerID"])
    return sorted(before & after)


@pytest.fixture(scope="module")
def pool(people: pd.DataFrame) -> pd.Series:
    """Distinct buyers before the cutoff per product, by StockCode."""
    return people[people["InvoiceDate"] < CUTOFF].groupby("StockCode")["CustomerID"].nunique().sort_index()


@pytest.fixture(scope="module")
def positives(people: pd.DataFrame, eligible: list[int], pool: pd.Series) -> dict[int, list[str]]:
    after = people[(people["InvoiceDate"] >= CUTOFF) & people["CustomerID"].isin(eligible) & people["StockCode"].isin(pool.index)]
    out = {c: sorted(set(g)) for c, g in after.groupby("CustomerID")["StockCode"]}
    return {c: out.get(c, []) for c in eligible}


# --- the datasets, built once ---------------------------------------------------------------


def build(spec: TaskSpec, **ctx) -> TaskData:
    return spec.build_dataset(BuildContext(settings=spec.settings(), **ctx))


@pytest.fixture(scope="module")
def datasets() -> dict[str, TaskData]:
    return {name: build(spec) for name, spec in SPECS.items()}


@pytest.fixture(scope="module")
def test_baselines(datasets: dict[str, TaskData]) -> dict[str, dict]:
    return {name: SPECS[name].baselines(datasets[name], "test") for name in SPECS}


# --- registration and schema ----------------------------------------------------------------


def test_builtin_plugins_register_the_four_tasks() -> None:
    assert [name for name, _ in BUILTIN_PLUGINS] == ["sales", "price_bin", "user_profile", "recommend"]
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
    assert (r.negatives_per_positive, r.negative_seed, r.ranking_negatives, r.ranking_seed) == (4, 0, 99, 1)
    with pytest.raises(ValueError, match="Monday"):
        sales.SalesSettings(first_week="2011-01-04")
    with pytest.raises(ValueError):
        sales.SalesSettings(val_weeks=("2011-10-10", "2011-08-15"))
    with pytest.raises(ValueError):
        user_profile.UserProfileSettings(cutoff="not a date")


# --- sales ----------------------------------------------------------------------------------


def test_sales_reference_counts(datasets: dict[str, TaskData]) -> None:
    data = datasets["sales"]
    assert [len(data[s]) for s in SPLITS] == [101_780, 28_680, 30_075]
    assert (data["test"]["label"] == 0).mean() == pytest.approx(0.398, abs=0.0005)
    assert data["train"]["week"].max() == pd.Timestamp("2011-08-08")
    assert (data["val"]["week"].min(), data["val"]["week"].max()) == (pd.Timestamp("2011-08-15"), pd.Timestamp("2011-10-03"))
    assert (data["test"]["week"].min(), data["test"]["week"].max()) == (pd.Timestamp("2011-10-10"), pd.Timestamp("2011-11-28"))
    assert data["train"]["week"].min() == pd.Timestamp("2011-01-03")


def test_sales_counts_match_an_independent_recount(datasets: dict[str, TaskData], clean: pd.DataFrame) -> None:
    first = clean.groupby("StockCode")["week"].min().clip(lower=pd.Timestamp("2011-01-03"))
    ranges = {"train": ("2011-01-03", "2011-08-08"), "val": ("2011-08-15", "2011-10-03"), "test": ("2011-10-10", "2011-11-28")}
    for split, (lo, hi) in ranges.items():
        start = first.clip(lower=pd.Timestamp(lo))
        weeks = ((pd.Timestamp(hi) - start).dt.days // 7 + 1).clip(lower=0)
        assert weeks.sum() == len(datasets["sales"][split]), split


def test_sales_rows_match_weekly_sums(datasets: dict[str, TaskData], clean: pd.DataFrame, names: dict[str, str]) -> None:
    frame = pd.concat([datasets["sales"][s] for s in SPLITS])
    # A best seller, a product first sold mid-year, and one sold only in December 2010.
    first = clean.groupby("StockCode")["week"].min()
    last = clean.groupby("StockCode")["week"].max()
    mid_year = first[first == pd.Timestamp("2011-06-06")].index[0]
    december_only = last[last < pd.Timestamp("2011-01-03")].index[0]
    for code in ("85123A", mid_year, december_only):
        rows = clean[clean["StockCode"] == code]
        weekly = rows.groupby("week")["Quantity"].sum()
        price = rows[(rows["week"] >= "2011-01-03") & (rows["week"] <= "2011-08-08")]["UnitPrice"].median()
        mine = frame[frame["stock_code"] == code].sort_values("week")
        start = max(first[code], pd.Timestamp("2011-01-03"))
        assert mine["week"].tolist() == list(pd.date_range(start, "2011-11-28", freq="7D"))
        for _, row in mine.iterrows():
            assert row["label"] == pytest.approx(math.log1p(weekly.get(row["week"], 0)))
            for k in range(1, 5):
                assert row[f"lag_{k}"] == pytest.approx(math.log1p(weekly.get(row["week"] - pd.Timedelta(weeks=k), 0)))
            assert row["description"] == names[code]
            assert (math.isnan(price) and math.isnan(row["median_price"])) or row["median_price"] == pytest.approx(price)
    assert (frame.loc[frame["stock_code"] == december_only, "label"] == 0).all()
    assert frame["median_price"].isna().any()  # products with no train-week sale: missing, not 0


def test_sales_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["sales"]
    assert got["lag_1"]["rmse"] == pytest.approx(1.138, abs=0.005)
    assert got["lag_1"]["r2"] == pytest.approx(0.653, abs=0.005)
    assert got["mean_lags_1_4"]["rmse"] == pytest.approx(0.981, abs=0.005)
    assert got["mean_lags_1_4"]["r2"] == pytest.approx(0.742, abs=0.005)
    assert 0.986 - 0.005 <= got["gradient_boosting"]["rmse"] <= 1.027 + 0.005
    assert 0.717 - 0.005 <= got["gradient_boosting"]["r2"] <= 0.740 + 0.005


def test_sales_metrics_clip_and_skip_missing() -> None:
    frame = pd.DataFrame({"label": [0.0, 1.0, np.nan]})
    batch = EvalBatch("val", frame, np.array([[-3.0], [1.0], [5.0]]), frame[["label"]].to_numpy(), lambda f: None)
    got = sales.sales_metrics(batch)
    assert got == {"rmse": 0.0, "mae": 0.0, "mae_units": 0.0, "r2": 1.0}
    assert set(got) == set(sales.SALES.metric_directions)
    decoded = sales.decode_sales(np.array([[-1.0], [math.log1p(9)]]))
    assert decoded["units"].tolist() == pytest.approx([0.0, 9.0])
    assert decoded["prediction"].tolist() == pytest.approx([-1.0, math.log1p(9)])


# --- price_bin ------------------------------------------------------------------------------


def test_price_bin_reference_counts(datasets: dict[str, TaskData]) -> None:
    assert [len(datasets["price_bin"][s]) for s in SPLITS] == [3_031, 405, 362]


def test_price_bin_classes_match_an_independent_recount(datasets: dict[str, TaskData], clean: pd.DataFrame, names: dict[str, str]) -> None:
    median = clean.groupby("StockCode")["UnitPrice"].median()
    bins = pd.cut(median, [-np.inf, 1, 2, 4, 8, np.inf], right=False, labels=False)
    split = pd.Series([split_of(code) for code in median.index], index=median.index)
    for s in SPLITS:
        frame = datasets["price_bin"][s]
        expected = bins[split == s]
        assert frame["label"].value_counts().sort_index().to_dict() == expected.value_counts().sort_index().astype(int).to_dict()
        assert dict(zip(frame["stock_code"], frame["label"].astype(int))) == expected.to_dict()
        assert frame["description"].tolist() == [names[c] for c in frame["stock_code"]]
    assert price_bin.price_class(np.array([0.99, 1.0, 1.99, 2.0, 4.0, 7.99, 8.0])).tolist() == [0, 1, 1, 2, 3, 3, 4]


def test_price_bin_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["price_bin"]
    assert got["majority"]["accuracy"] == pytest.approx(0.293, abs=0.005)
    assert got["majority"]["macro_f1"] == pytest.approx(0.091, abs=0.005)
    assert got["tfidf_logreg"]["accuracy"] == pytest.approx(0.696, abs=0.005)
    assert got["tfidf_logreg"]["macro_f1"] == pytest.approx(0.688, abs=0.005)
    matrix = got["majority"]["confusion_matrix"]
    assert isinstance(matrix, list) and len(matrix) == 5 and all(isinstance(r, list) and len(r) == 5 for r in matrix)
    assert sum(map(sum, matrix)) == 362


def test_price_bin_metrics_and_decode() -> None:
    frame = pd.DataFrame({"label": [0.0, 4.0, np.nan]})
    probabilities = np.array([[0.9, 0.1, 0, 0, 0], [0, 0, 0, 0.4, 0.6], [1, 0, 0, 0, 0]])
    got = price_bin.price_bin_metrics(EvalBatch("val", frame, probabilities, frame[["label"]].to_numpy(), lambda f: None))
    assert got["accuracy"] == 1.0
    assert got["confusion_matrix"][0][0] == 1 and got["confusion_matrix"][4][4] == 1
    assert set(got) == set(price_bin.PRICE_BIN.metric_directions)
    assert price_bin.PRICE_BIN.metric_directions["confusion_matrix"] == "info"
    decoded = price_bin.decode_price_bin(probabilities[:2])
    assert decoded["prediction"].tolist() == ["<1", ">=8"]
    assert decoded["confidence"].tolist() == pytest.approx([0.9, 0.6])


# --- user_profile ---------------------------------------------------------------------------


def test_user_profile_reference_counts(datasets: dict[str, TaskData]) -> None:
    assert [len(datasets["user_profile"][s]) for s in SPLITS] == [1_552, 211, 184]


def test_user_profile_matches_an_independent_recount(
    datasets: dict[str, TaskData], people: pd.DataFrame, eligible: list[int], names: dict[str, str]
) -> None:
    data = datasets["user_profile"]
    for s in SPLITS:
        assert data[s]["customer_id"].tolist() == [c for c in eligible if split_of(str(c)) == s]

    # Labels: the words of the products each customer bought on/after the cutoff.
    patterns = {w: re.compile(rf"\b{re.escape(w)}\b") for w in user_profile.LABELS}
    words = {code: {w for w, p in patterns.items() if p.search(name.upper())} for code, name in names.items()}
    after = people[people["InvoiceDate"] >= CUTOFF].groupby("CustomerID")["StockCode"].unique()
    frame = pd.concat([data[s] for s in SPLITS]).set_index("customer_id")
    for customer in eligible:
        bought = set().union(*(words[c] for c in after[customer]))
        assert {w for w in user_profile.LABELS if frame.at[customer, w] == 1} == bought

    # History and country of a few customers, by hand.
    before = people[people["InvoiceDate"] < CUTOFF]
    for customer in (eligible[0], eligible[len(eligible) // 2], eligible[-1]):
        mine = before[before["CustomerID"] == customer].assign(name=lambda f: f["StockCode"].map(names))
        last = mine.groupby("name")["InvoiceDate"].max()
        order = sorted(last.index, key=lambda n: (-last[n].value, n))
        assert frame.at[customer, "history"] == " ; ".join(order)
        counts = mine["Country"].value_counts()
        assert frame.at[customer, "country"] == min(c for c, n in counts.items() if n == counts.max())

        # The derived features: label words counted over the whole history, and its newest 10 items.
        derived = user_profile.history_features(frame.loc[[customer]]).iloc[0]
        assert derived["history_items"] == pytest.approx(np.log1p(len(order)))
        for word, pattern in patterns.items():
            hits = [bool(pattern.search(n.upper())) for n in order]
            assert derived[f"history_share_{word}"] == pytest.approx(sum(hits) / len(order)), word
            assert derived[f"history_count_{word}"] == pytest.approx(np.log1p(sum(hits))), word
            assert derived[f"recent_share_{word}"] == pytest.approx(sum(hits[:10]) / min(10, len(order))), word


def test_user_profile_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["user_profile"]
    prior, seen = got["train_label_prior"], got["seen_in_history"]
    assert (prior["micro_f1"], prior["macro_f1"], prior["map"]) == pytest.approx((0.461, 0.185, 0.391), abs=0.005)
    assert (seen["micro_f1"], seen["macro_f1"], seen["map"]) == pytest.approx((0.654, 0.585, 0.513), abs=0.005)
    assert got["tfidf_country_logreg"]["map"] == pytest.approx(0.654, abs=0.005)


def test_user_profile_metrics_skip_missing_cells_and_decode() -> None:
    labels = np.array([[1.0, 0.0], [0.0, np.nan], [1.0, 1.0]])
    predictions = np.array([[0.9, 0.1], [0.2, 0.9], [0.8, 0.7]])
    frame = pd.DataFrame(labels, columns=["A", "B"])
    got = user_profile.user_profile_metrics(EvalBatch("val", frame, predictions, labels, lambda f: None))
    assert got == {"micro_f1": 1.0, "macro_f1": 1.0, "map": 1.0}
    decoded = user_profile.decode_user_profile(np.tile([0.9, 0.1] + [0.0] * 18, (1, 1)))
    assert decoded["predicted_labels"].tolist() == ["HEART"]
    assert decoded["p_HEART"].tolist() == [0.9]


# --- recommend ------------------------------------------------------------------------------


def test_recommend_reference_counts(datasets: dict[str, TaskData]) -> None:
    data = datasets["recommend"]
    assert [int((data[s]["label"] == 1).sum()) for s in SPLITS] == [66_821, 9_111, 8_627]
    assert [int((data[s]["label"] == 0).sum()) for s in SPLITS] == [260_593, 36_444, 33_561]
    assert len(data.extras["pool"]) == 3_388


def test_recommend_matches_an_independent_recount(
    datasets: dict[str, TaskData], pool: pd.Series, positives: dict[int, list[str]], people: pd.DataFrame
) -> None:
    data = datasets["recommend"]
    assert data.extras["pool"]["stock_code"].tolist() == pool.index.tolist()
    assert data.extras["pool"]["popularity"].tolist() == pool.tolist()
    for s in SPLITS:
        mine = {c: p for c, p in positives.items() if split_of(str(c)) == s}
        frame = data[s]
        assert int(frame["label"].sum()) == sum(map(len, mine.values()))
        assert int((frame["label"] == 0).sum()) == sum(min(4 * len(p), len(pool) - len(p)) for p in mine.values())
        got = frame[frame["label"] == 1].groupby("customer_id")["stock_code"].apply(sorted).to_dict()
        assert got == {c: p for c, p in mine.items() if p}
    frame = pd.concat([data[s] for s in SPLITS])
    negatives = frame[frame["label"] == 0]
    assert not any(code in set(positives[c]) for c, code in zip(negatives["customer_id"], negatives["stock_code"]))

    # Inputs of a sample of rows, recomputed.
    before = people[people["InvoiceDate"] < CUTOFF]
    invoices = before.groupby(["CustomerID", "StockCode"])["InvoiceNo"].nunique()
    products = before.groupby("CustomerID")["StockCode"].nunique()
    for _, row in frame.sample(300, random_state=0).iterrows():
        c, code = row["customer_id"], row["stock_code"]
        assert row["log_popularity"] == pytest.approx(math.log1p(pool[code]))
        assert row["log_bought_before"] == pytest.approx(math.log1p(invoices.get((c, code), 0)))
        assert row["log_history_size"] == pytest.approx(math.log1p(products[c]))


def test_recommend_negatives_follow_the_seeded_stream(
    datasets: dict[str, TaskData], pool: pd.Series, positives: dict[int, list[str]]
) -> None:
    frame = pd.concat([datasets["recommend"][s] for s in SPLITS])
    rng = np.random.default_rng(0)
    codes = pool.index.to_numpy()
    for customer in list(positives)[:40]:  # the stream is sequential: the first customers suffice
        own = set(positives[customer])
        candidates = np.array([c for c in codes if c not in own])
        popularity = pool[candidates].to_numpy()
        size = min(4 * len(own), len(candidates))
        drawn = rng.choice(candidates, size=size, replace=False, p=popularity / popularity.sum())
        mine = frame[(frame["customer_id"] == customer) & (frame["label"] == 0)]["stock_code"]
        assert sorted(mine) == sorted(drawn), customer


def test_recommend_ranking_candidates(datasets: dict[str, TaskData], pool: pd.Series, positives: dict[int, list[str]]) -> None:
    ranking = datasets["recommend"].extras["ranking"]
    assert set(ranking) == {"val", "test"}
    for split, n_positives in (("val", 9_111), ("test", 8_627)):
        frame = ranking[split]
        assert set(recommend.RECOMMEND.columns) <= set(frame.columns)
        assert frame["query"].nunique() == n_positives
        assert (frame.groupby("query").size() == 100).all()
        assert (frame.groupby("query")["label"].sum() == 1).all()
        assert (frame.groupby("query")["stock_code"].nunique() == 100).all()
        assert frame.groupby("query").head(1)["label"].eq(1).all()

        # The first positives, redrawn with an independent loop on a fresh default_rng(1).
        rng = np.random.default_rng(1)
        codes = pool.index.to_numpy()
        expected = []
        for customer in [c for c in positives if split_of(str(c)) == split]:
            own = set(positives[customer])
            candidates = np.array([c for c in codes if c not in own])
            popularity = pool[candidates].to_numpy()
            for positive in positives[customer]:
                drawn = rng.choice(candidates, size=99, replace=False, p=popularity / popularity.sum())
                expected.append((customer, positive, list(drawn)))
            if len(expected) >= 30:
                break
        for query, (customer, positive, drawn) in enumerate(expected):
            rows = frame[frame["query"] == query]
            assert rows["customer_id"].eq(customer).all()
            assert rows["stock_code"].iloc[0] == positive
            assert rows["stock_code"].iloc[1:].tolist() == drawn


def test_recommend_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["recommend"]
    keys = ("auc", "log_loss", "hit_rate_at_10", "ndcg_at_10")
    for name, reference in (
        ("popularity", (0.524, 0.507, 0.118, 0.054)),
        ("bought_before", (0.661, 0.447, 0.343, 0.187)),
        ("gradient_boosting", (0.767, 0.415, 0.451, 0.270)),
    ):
        assert tuple(got[name][k] for k in keys) == pytest.approx(reference, abs=0.005), name


def brute_force_ranking(scores: list[float], positive: int, k: int) -> tuple[float, float]:
    """Average HR@k / NDCG@k over every order random tie-breaking can produce."""
    hits = gains = 0.0
    orders = [o for o in itertools.permutations(range(len(scores))) if all(scores[a] >= scores[b] for a, b in zip(o, o[1:]))]
    for order in orders:
        rank = order.index(positive) + 1
        hits += rank <= k
        gains += 1 / math.log2(rank + 1) if rank <= k else 0.0
    return hits / len(orders), gains / len(orders)


def test_ranking_metrics_count_ties_at_their_expected_value() -> None:
    rng = np.random.default_rng(7)
    cases = [[0.5, 0.5, 0.5, 0.5, 0.5], [0.3, 0.9, 0.3, 0.3, 0.1, 0.3], [0.9, 0.1, 0.2], [0.2, 0.9, 0.9, 0.8]]
    cases += [list(rng.integers(0, 3, size=6) / 2) for _ in range(6)]
    for k in (1, 2, 3):
        scores, query, positive, expected = [], [], [], []
        for q, case in enumerate(cases):
            scores += case
            query += [q] * len(case)
            positive += [True] + [False] * (len(case) - 1)
            expected.append(brute_force_ranking(case, 0, k))
        hit_rate, ndcg = recommend.ranking_metrics(np.array(scores), np.array(query), np.array(positive), k=k)
        assert hit_rate == pytest.approx(np.mean([e[0] for e in expected]))
        assert ndcg == pytest.approx(np.mean([e[1] for e in expected]))


def test_recommend_metrics_score_the_ranking_candidates(datasets: dict[str, TaskData]) -> None:
    data = datasets["recommend"]
    frame = data["val"]

    def batch(score) -> EvalBatch:
        return EvalBatch("val", frame, score(frame), frame[["label"]].to_numpy(), score, data.extras)

    perfect = recommend.recommend_metrics(batch(lambda f: f[["label"]].to_numpy(dtype=float)))
    assert (perfect["auc"], perfect["hit_rate_at_10"], perfect["ndcg_at_10"]) == (1.0, 1.0, 1.0)
    assert perfect["log_loss"] == pytest.approx(1e-6, abs=1e-5)
    constant = recommend.recommend_metrics(batch(lambda f: np.full((len(f), 1), 0.5)))
    assert constant["auc"] == 0.5
    assert constant["hit_rate_at_10"] == pytest.approx(0.1)
    assert constant["ndcg_at_10"] == pytest.approx(sum(1 / math.log2(r + 1) for r in range(1, 11)) / 100)
    assert set(perfect) == set(recommend.RECOMMEND.metric_directions)
    train = data["train"].head(50)
    no_ranking = recommend.recommend_metrics(
        EvalBatch("train", train, train[["label"]].to_numpy(), train[["label"]].to_numpy(), lambda f: None, data.extras)
    )
    assert set(no_ranking) == set(perfect) and math.isnan(no_ranking["hit_rate_at_10"])

    # A subsampled split (max_eval_examples) ranks only the positives among its rows.
    ranking = data.extras["ranking"]["val"]
    assert recommend.evaluated_queries(ranking, frame) is ranking  # the full split: every query
    sample = frame.sample(n=200, random_state=0)
    kept = recommend.evaluated_queries(ranking, sample)
    firsts = kept.groupby("query").head(1)
    assert (firsts["label"] == 1).all()
    assert set(zip(firsts["customer_id"], firsts["stock_code"])) == set(
        zip(*sample.loc[sample["label"] == 1, ["customer_id", "stock_code"]].to_numpy().T))
    assert kept.groupby("query").size().eq(ranking.groupby("query").size().loc[firsts["query"]].to_numpy()).all()
    scored: list[int] = []
    recommend.recommend_metrics(EvalBatch("val", sample, sample[["label"]].to_numpy(dtype=float),
                                          sample[["label"]].to_numpy(), lambda f: scored.append(len(f)) or
                                          f[["label"]].to_numpy(dtype=float), data.extras))
    assert scored == [len(kept)] and len(kept) < len(ranking) / 10
    assert recommend.decode_recommend(np.array([[0.25]]))["probability"].tolist() == [0.25]


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
        data = spec.build_dataset(BuildContext(settings=settings[name], data_path=str(RAW_2010), column_map=MAP_2010))
        for split in SPLITS:
            assert len(data[split]) > 100, (name, split)
            assert set(spec.columns) <= set(data[split].columns)
        if name == "sales":
            assert data["test"]["week"].max() == pd.Timestamp("2010-11-29")
            assert data["train"]["week"].min() == pd.Timestamp("2010-01-04")
        if name == "price_bin":
            assert len(pd.concat([data[s] for s in SPLITS])) == retail.load_transactions(RAW_2010, MAP_2010)["stock_code"].nunique()


def test_the_plugin_kit_passes_user_profile_with_its_derived_features() -> None:
    """``shopmtl plugins check`` / ``check_task`` build the dataset and check the derived
    numeric columns (which the built frame does not hold) like any other."""
    from shopmtl.testing import check_task

    assert check_task(user_profile.USER_PROFILE) == []
    broken = dataclasses.replace(
        user_profile.USER_PROFILE,
        derive=DerivedFeatures(user_profile.HISTORY_FEATURES, lambda frame: frame[["no_such_column"]]),
    )
    problems = check_task(broken)
    assert problems and all("derive.compute failed" in p and "KeyError" in p for p in problems)
