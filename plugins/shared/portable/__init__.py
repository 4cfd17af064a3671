"""Fitted scikit-learn models as plain arrays and JSON, and the numpy code that predicts with them.

A built-in prior is fitted with scikit-learn, then turned into one of these (``from_sklearn``):
its state (:class:`shopmtl.PriorState`) is what a run saves, and rebuilding it needs neither a
pickle nor scikit-learn. Each mirrors the estimator's own prediction arithmetic, so it agrees
with the estimator to rounding (tests/plugins/test_portable_priors.py checks every built-in):

- :class:`~shopmtl.plugins.shared.portable.text.Tfidf` -- ``TfidfVectorizer`` (word analyzer)
- :class:`~shopmtl.plugins.shared.portable.text.OneHot` -- ``OneHotEncoder`` of one column
- :class:`~shopmtl.plugins.shared.portable.linear.Logistic` -- ``LogisticRegression``
- :class:`~shopmtl.plugins.shared.portable.trees.BoostedTrees` -- ``HistGradientBoosting*``
"""


class UnsupportedModel(ValueError):
    """A fitted model uses a setting these classes do not reproduce; the message names it."""
