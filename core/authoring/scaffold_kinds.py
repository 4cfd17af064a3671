"""What ``shopmtl new-plugin NAME --kind KIND`` puts in the generated task, kind by kind.

Every kind shares the package layout (:mod:`shopmtl.core.scaffold_templates`): a product
table shipped in the wheel, a ``data_file`` setting that replaces it, a stable split by
item id, a constant baseline and scikit-learn metrics. A :class:`KindTemplate` holds the
pieces that differ -- which column the label comes from and how, the metrics, the
baseline's constant prediction, the TaskSpec fields -- and :func:`sample_rows` writes the
label's source column into the sample data, synthetic but learnable from the title.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KINDS", "KindTemplate", "sample_rows"]


@dataclass(frozen=True)
class KindTemplate:
    """The kind-specific parts of a generated ``plugin.py`` and README.

    Attributes:
        kind: the ``TaskSpec.kind``.
        summary: what the task predicts from what, for the docstrings, the description and the README.
        label_source: the sample CSV's column the labels are made from.
        constants: module-level constants (label names, classes, metric directions).
        settings_fields: extra fields of the settings dataclass (indented code).
        add_labels: the body of ``add_labels(frame, settings)``.
        metrics: the body of ``scores(y, pred)``: the metrics of labels ``y`` and predictions
            ``pred`` of the rows whose labels are present (at least one).
        constant: the body of ``constant_prediction(train)``, the baseline's one row.
        baseline_name: the baseline's name in ``shopmtl train``'s table.
        spec_fields: TaskSpec keyword arguments beyond the common ones (indented code).
        extra: code placed after ``baselines`` (a ``decode``), or ``""``.
    """

    kind: str
    summary: str
    label_source: str
    constants: str
    settings_fields: str
    add_labels: str
    metrics: str
    constant: str
    baseline_name: str
    spec_fields: str
    extra: str = ""


REGRESSION = KindTemplate(
    kind="regression",
    summary="the log price of a product, from its title, category and pack size",
    label_source="price",
    constants="""\
#: Every metric ``metrics`` returns, and whether higher or lower is better.
METRIC_DIRECTIONS = {"rmse": "min", "mae": "min", "r2": "max"}
PRIMARY_METRIC = "rmse"
LABELS = ("label",)""",
    settings_fields="",
    add_labels='''\
    """``label``: ``log1p(price)``; a missing or unreadable price is a missing label (NaN)."""
    return frame.assign(label=np.log1p(pd.to_numeric(frame["price"], errors="coerce")))''',
    metrics='''\
    """RMSE, MAE and R² on the log scale (scikit-learn)."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    return {
        "rmse": float(root_mean_squared_error(y[:, 0], pred[:, 0])),
        "mae": float(mean_absolute_error(y[:, 0], pred[:, 0])),
        "r2": float(r2_score(y[:, 0], pred[:, 0])) if len(y) > 1 else float("nan"),
    }''',
    constant='''\
    """The train median of the label."""
    return np.array([train["label"].median()], dtype=float)''',
    baseline_name="train_median",
    spec_fields="""\
    numeric=("pack_size",),
    categorical=("category",),
    decode=decode,""",
    extra='''

def decode(predictions: np.ndarray) -> pd.DataFrame:
    """What `shopmtl predict` writes: the model's log price, and the price itself."""
    # p[:, 0], not p.reshape(len(p), -1): numpy cannot infer a width of zero rows, and
    # decode must take zero rows (serve lists a task's outputs by decoding none).
    log_price = np.asarray(predictions, dtype=float)
    log_price = log_price[:, 0] if log_price.ndim > 1 else log_price
    return pd.DataFrame({"prediction": log_price, "price": np.expm1(log_price).clip(min=0.0)})
''',
)

BINARY = KindTemplate(
    kind="binary",
    summary="will a product be a bestseller (sell at least min_units units in its first month), from its title, category, pack size and price",
    label_source="units_sold",
    constants="""\
METRIC_DIRECTIONS = {"auc": "max", "average_precision": "max", "accuracy": "max"}
PRIMARY_METRIC = "auc"
LABELS = ("bestseller",)""",
    settings_fields="""\
    #: A product is a bestseller when it sold at least this many units in its first month.
    min_units: int = 30
""",
    add_labels='''\
    """``bestseller``: 1.0 when ``units_sold >= settings.min_units``, else 0.0; NaN when unknown."""
    units = pd.to_numeric(frame["units_sold"], errors="coerce")
    return frame.assign(bestseller=(units >= settings.min_units).astype(float).where(units.notna()))''',
    metrics='''\
    """ROC AUC, average precision and accuracy at 0.5 (scikit-learn)."""
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:  # one class only: AUC and AP are undefined
        return {name: float("nan") for name in METRIC_DIRECTIONS}
    return {
        "auc": float(roc_auc_score(y[:, 0], pred[:, 0])),
        "average_precision": float(average_precision_score(y[:, 0], pred[:, 0])),
        "accuracy": float(accuracy_score(y[:, 0], pred[:, 0] >= 0.5)),
    }''',
    constant='''\
    """The train share of bestsellers, as every row's probability."""
    return np.array([train["bestseller"].mean()], dtype=float)''',
    baseline_name="train_rate",
    spec_fields="""\
    numeric=("pack_size", "price"),
    categorical=("category",),""",
)

MULTICLASS = KindTemplate(
    kind="multiclass",
    summary="the price band of a product (budget, standard, premium), from its title, category and pack size",
    label_source="price",
    constants="""\
#: The class names; the label column holds the class index.
CLASSES = ("budget", "standard", "premium")
METRIC_DIRECTIONS = {"accuracy": "max", "macro_f1": "max"}
PRIMARY_METRIC = "macro_f1"
LABELS = ("band",)""",
    settings_fields="""\
    #: Prices below this are "budget".
    budget_below: float = 3.0
    #: Prices from this on are "premium"; between the two, "standard".
    premium_from: float = 8.0
""",
    add_labels='''\
    """``band``: the index in CLASSES of the product's price band; NaN when the price is unknown."""
    if not settings.budget_below < settings.premium_from:
        raise ValueError(
            f"__NAME__: budget_below={settings.budget_below} must be below premium_from={settings.premium_from}"
        )
    price = pd.to_numeric(frame["price"], errors="coerce")
    band = np.digitize(price.fillna(0.0), [settings.budget_below, settings.premium_from]).astype(float)
    return frame.assign(band=pd.Series(band, index=frame.index).where(price.notna()))''',
    metrics='''\
    """Accuracy and macro-F1 over CLASSES (scikit-learn)."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, chosen = y[:, 0].astype(int), pred.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(truth, chosen)),
        "macro_f1": float(f1_score(truth, chosen, average="macro", labels=range(len(CLASSES)), zero_division=0)),
    }''',
    constant='''\
    """The train majority class, with probability 1."""
    majority = int(train["band"].mode().iloc[0])
    return np.eye(len(CLASSES))[majority]''',
    baseline_name="majority",
    spec_fields="""\
    classes=CLASSES,
    numeric=("pack_size",),
    categorical=("category",),""",
)

MULTILABEL = KindTemplate(
    kind="multilabel",
    summary="which tags a product carries (gift, eco, seasonal), from its title, category and pack size",
    label_source="tags",
    constants='''\
#: One 0/1 label column per tag; ``tags`` in the data lists a product's tags, ``;``-separated.
LABELS = ("gift", "eco", "seasonal")
METRIC_DIRECTIONS = {"micro_f1": "max", "macro_f1": "max", "map": "max"}
PRIMARY_METRIC = "map"''',
    settings_fields="",
    add_labels='''\
    """One 0/1 column per tag in LABELS, from the ``;``-separated ``tags`` column (empty: none)."""
    tags = frame["tags"].fillna("").astype(str).str.lower().str.split(";")
    return frame.assign(**{label: tags.map(lambda found, label=label: float(label in found)) for label in LABELS})''',
    metrics='''\
    """Micro- and macro-F1 at 0.5 and mean average precision over tags (scikit-learn)."""
    from sklearn.metrics import average_precision_score, f1_score

    chosen = (pred >= 0.5).astype(int)
    ranked = [average_precision_score(y[:, k], pred[:, k]) for k in range(y.shape[1]) if len(np.unique(y[:, k])) == 2]
    return {
        "micro_f1": float(f1_score(y, chosen, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y, chosen, average="macro", zero_division=0)),
        "map": float(np.mean(ranked)) if ranked else float("nan"),
    }''',
    constant='''\
    """Each tag's train frequency, as every row's probability."""
    return train[list(LABELS)].mean().to_numpy(dtype=float)''',
    baseline_name="label_frequency",
    spec_fields="""\
    numeric=("pack_size",),
    categorical=("category",),""",
)

#: ``--kind`` -> its template.
KINDS: dict[str, KindTemplate] = {k.kind: k for k in (REGRESSION, BINARY, MULTICLASS, MULTILABEL)}


# ------------------------------------------------------------------ the sample data

_ITEMS = {  # item: (category, base price)
    "mug": ("kitchen", 2.5),
    "teapot": ("kitchen", 9.0),
    "tin": ("kitchen", 3.0),
    "bag": ("storage", 1.7),
    "basket": ("storage", 6.5),
    "box": ("storage", 4.0),
    "lantern": ("decor", 7.5),
    "clock": ("decor", 8.5),
    "frame": ("decor", 3.5),
    "candle": ("decor", 1.3),
}
_SIZES = {"mini": 0.6, "small": 0.8, "": 1.0, "large": 1.4, "jumbo": 2.0}
_MATERIALS = {
    "paper": 0.5,
    "cotton": 0.8,
    "glass": 1.2,
    "ceramic": 1.3,
    "wooden": 1.5,
    "metal": 1.6,
}
_COLOURS = ["red", "blue", "pink", "white", "green", "vintage", "retro", "floral"]


def _units_sold(rng: random.Random, product: dict[str, str], price: float) -> str:
    """First-month units: retro looks, small sizes and low prices sell more (log-normal noise)."""
    pull = 0.6 * (product["colour"] in ("retro", "vintage")) + 0.4 * (
        product["size"] in ("mini", "small")
    )
    return str(round(math.exp(3.4 + pull - 0.35 * math.log(price) + rng.gauss(0.0, 0.5))))


def _tags(rng: random.Random, product: dict[str, str], price: float) -> str:
    """gift (decor, glass, ceramic), eco (paper, cotton, wooden), seasonal (red/green decor), with noise."""
    chances = {
        "gift": 0.8
        if product["category"] == "decor" or product["material"] in ("glass", "ceramic")
        else 0.1,
        "eco": 0.85 if product["material"] in ("paper", "cotton", "wooden") else 0.05,
        "seasonal": 0.8
        if product["colour"] in ("red", "green") and product["category"] == "decor"
        else 0.05,
    }
    return ";".join(tag for tag, chance in chances.items() if rng.random() < chance)


#: Label source column -> how to make it from a product and its price ("price" is already there).
_LABEL_COLUMNS: dict[str, Callable[[random.Random, dict[str, str], float], str]] = {
    "units_sold": _units_sold,
    "tags": _tags,
}


def sample_rows(kind: str, rows: int = 300, seed: int = 7) -> list[list[str]]:
    """The sample table for ``kind``: a header row, then ``rows`` products (deterministic).

    Columns ``item_id,title,category,pack_size,price``, plus the kind's label source when it
    is not the price. The price follows the title's words and the pack size, with noise;
    ``pack_size`` is missing on ~5% of rows.
    """
    source = KINDS[kind].label_source
    extra = _LABEL_COLUMNS.get(source)
    # Seeded draws for reproducible sample data, not secrets.
    rng, label_rng = random.Random(seed), random.Random(seed + 1)  # noqa: S311
    table = [["item_id", "title", "category", "pack_size", "price", *([source] if extra else [])]]
    for item_id in range(1, rows + 1):
        item = rng.choice(list(_ITEMS))
        size, material, colour = (
            rng.choice(list(_SIZES)),
            rng.choice(list(_MATERIALS)),
            rng.choice(_COLOURS),
        )
        category, base = _ITEMS[item]
        pack = rng.choice([1, 1, 1, 2, 4, 6, 12])
        price = (
            base * _SIZES[size] * _MATERIALS[material] * pack**0.8 * math.exp(rng.gauss(0.0, 0.15))
        )
        title = " ".join(w for w in (size, colour, material, item) if w).upper()
        row = [
            str(item_id),
            title,
            category,
            "" if rng.random() < 0.05 else str(pack),
            f"{price:.2f}",
        ]
        if extra:
            product = {"size": size, "material": material, "colour": colour, "category": category}
            row.append(extra(label_rng, product, price))
        table.append(row)
    return table
