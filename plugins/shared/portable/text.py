"""Text and category features: TF-IDF of words and one-hot categories, as arrays and JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from shopmtl import PriorState
from shopmtl.plugins.shared.portable import UnsupportedModel

#: TfidfVectorizer settings a rebuilt vectorizer reproduces, with the only values it accepts
#: (None: any value; it is stored and honoured). Any other setting is refused when saving.
_FIXED = {
    "input": "content",
    "analyzer": "word",
    "preprocessor": None,
    "tokenizer": None,
    "stop_words": None,
    "strip_accents": None,
    "vocabulary": None,
    "dtype": np.float64,
}
_STORED = ("lowercase", "token_pattern", "ngram_range", "binary", "norm", "use_idf", "sublinear_tf")


@dataclass(frozen=True)
class Tfidf:
    """A fitted ``TfidfVectorizer`` (word analyzer): its vocabulary, idf and settings.

    :meth:`transform` computes what the vectorizer's ``transform`` does -- lower-case, the
    token pattern, word n-grams, counts, optional sublinear tf, times idf, row norm -- as a
    CSR matrix of float64.
    """

    terms: tuple[str, ...]  # column j's term
    idf: np.ndarray | None  # (n_terms,) float64, None when use_idf was off
    settings: dict[str, Any]  # _STORED's keys, JSON-able

    @classmethod
    def of(cls, fitted: Any) -> Tfidf:
        """``fitted`` itself when it is one already, else :meth:`from_sklearn` of it."""
        return fitted if isinstance(fitted, cls) else cls.from_sklearn(fitted)

    @classmethod
    def from_sklearn(cls, vectorizer: Any) -> Tfidf:
        """The state of a fitted ``TfidfVectorizer``; refuses settings it cannot reproduce."""
        params = vectorizer.get_params()
        for key, wanted in _FIXED.items():
            if (
                key in params
                and params[key] != wanted
                and not (key == "dtype" and params[key] is float)
            ):
                raise UnsupportedModel(
                    f"TfidfVectorizer({key}={params[key]!r}) cannot be saved as arrays: "
                    f"use {key}={wanted!r}"
                )
        if params["norm"] not in ("l2", None):
            raise UnsupportedModel(
                f"TfidfVectorizer(norm={params['norm']!r}) cannot be saved as arrays: use 'l2' or None"
            )
        terms = [""] * len(vectorizer.vocabulary_)
        for term, column in vectorizer.vocabulary_.items():
            terms[column] = term
        settings = {key: params[key] for key in _STORED}
        settings["ngram_range"] = list(settings["ngram_range"])
        idf = np.asarray(vectorizer.idf_, dtype=np.float64) if params["use_idf"] else None
        return cls(tuple(terms), idf, settings)

    def state(self) -> PriorState:
        """Vocabulary and settings as JSON, idf as an array."""
        arrays = {} if self.idf is None else {"idf": np.ascontiguousarray(self.idf)}
        return PriorState(arrays, {"terms": list(self.terms), "settings": dict(self.settings)})

    @classmethod
    def from_state(cls, state: PriorState) -> Tfidf:
        """What :meth:`state` wrote."""
        settings = dict(state.meta["settings"])
        missing = [key for key in _STORED if key not in settings]
        if missing:
            raise KeyError(f"the TF-IDF state lacks settings {missing}")
        terms = tuple(str(term) for term in state.meta["terms"])
        idf = state.arrays.get("idf")
        if settings["use_idf"] and (idf is None or idf.shape != (len(terms),)):
            raise ValueError(
                f"the TF-IDF state has {len(terms)} terms but idf of shape "
                f"{None if idf is None else idf.shape}"
            )
        return cls(terms, None if idf is None else np.asarray(idf, dtype=np.float64), settings)

    def transform(self, texts: Iterable[Any]) -> sparse.csr_matrix:
        """``(n, n_terms)`` TF-IDF rows of ``texts``, as the fitted vectorizer computes them."""
        vocabulary = self._vocabulary()
        indptr, columns, counts = [0], [], []
        for text in texts:
            row: dict[int, int] = {}
            for token in self._analyze(text):
                column = vocabulary.get(token)
                if column is not None:
                    row[column] = row.get(column, 0) + 1
            columns.extend(row)
            counts.extend(row.values())
            indptr.append(len(columns))
        x = sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float64), np.asarray(columns, dtype=np.int64), indptr),
            shape=(len(indptr) - 1, len(self.terms)),
        )
        x.sort_indices()
        if self.settings["binary"]:
            x.data.fill(1.0)
        if self.settings["sublinear_tf"]:
            np.log(x.data, x.data)
            x.data += 1.0
        if self.idf is not None:
            x.data *= self.idf[x.indices]
        if self.settings["norm"] == "l2":
            _normalize_rows(x)
        return x

    def _vocabulary(self) -> dict[str, int]:
        cached = self.__dict__.get("_index")
        if cached is None:  # built once per object, on first use (a frozen dataclass caches here)
            cached = {term: column for column, term in enumerate(self.terms)}
            object.__setattr__(self, "_index", cached)
        return cached

    def _analyze(self, text: Any) -> list[str]:
        if not isinstance(text, str):
            raise ValueError(f"TF-IDF input must be text, got {type(text).__name__} {text!r}")
        if self.settings["lowercase"]:
            text = text.lower()
        tokens = _pattern(self.settings["token_pattern"]).findall(text)
        low, high = self.settings["ngram_range"]
        if high == 1:
            return tokens
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams


def _normalize_rows(x: sparse.csr_matrix) -> None:
    """Divide each non-empty row of ``x`` by its L2 norm, in place (empty rows stay zero)."""
    lengths = np.diff(x.indptr)
    squares = np.zeros(len(lengths))
    filled = lengths > 0
    if x.nnz:  # reduceat over each filled row's first entry sums exactly that row
        squares[filled] = np.add.reduceat(x.data**2, x.indptr[:-1][filled])
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    x.data /= np.repeat(norms, lengths)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str) -> re.Pattern[str]:
    if text not in _PATTERNS:
        _PATTERNS[text] = re.compile(text)
    return _PATTERNS[text]


@dataclass(frozen=True)
class OneHot:
    """A fitted ``OneHotEncoder(handle_unknown="ignore")`` of one column: its categories."""

    categories: tuple[str, ...]

    @classmethod
    def of(cls, fitted: Any) -> OneHot:
        """``fitted`` itself when it is one already, else :meth:`from_sklearn` of it."""
        return fitted if isinstance(fitted, cls) else cls.from_sklearn(fitted)

    @classmethod
    def from_sklearn(cls, encoder: Any) -> OneHot:
        """The categories of a fitted one-column encoder; refuses settings it cannot reproduce."""
        params = encoder.get_params()
        wanted = {
            "handle_unknown": "ignore",
            "drop": None,
            "min_frequency": None,
            "max_categories": None,
        }
        for key, value in wanted.items():
            if params.get(key) != value:
                raise UnsupportedModel(
                    f"OneHotEncoder({key}={params.get(key)!r}) cannot be saved as arrays: "
                    f"use {key}={value!r}"
                )
        if len(encoder.categories_) != 1:
            raise UnsupportedModel(
                f"OneHotEncoder of {len(encoder.categories_)} columns cannot be saved: use one"
            )
        return cls(tuple(str(c) for c in encoder.categories_[0]))

    def state(self) -> PriorState:
        return PriorState({}, {"categories": list(self.categories)})

    @classmethod
    def from_state(cls, state: PriorState) -> OneHot:
        return cls(tuple(str(c) for c in state.meta["categories"]))

    def transform(self, column: Any) -> sparse.csr_matrix:
        """``(n, n_categories)`` one-hot rows of a column (or a one-column frame); unknown: zeros."""
        values = np.asarray(column, dtype=object).reshape(len(column), -1)[:, 0]
        index = {category: k for k, category in enumerate(self.categories)}
        found = np.array([index.get(v, -1) for v in values], dtype=np.int64)
        rows = np.flatnonzero(found >= 0)
        return sparse.csr_matrix(
            (np.ones(len(rows)), (rows, found[rows])), shape=(len(values), len(self.categories))
        )
