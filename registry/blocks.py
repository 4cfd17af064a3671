"""Deprecated: the building blocks moved out of the plugin contract.

The default head is :mod:`shopmtl.core.model.heads`, the masked losses
:mod:`shopmtl.core.model.losses`, activations and default decoders
:mod:`shopmtl.core.model.outputs`; plugin authors decode with the public
:func:`shopmtl.decode_by_kind` and score with :func:`shopmtl.log1p_regression_metrics`.
"""

from __future__ import annotations

from shopmtl.registry.deprecation import moved_to

_MOVED = {
    "shopmtl.core.model.heads": {"FeatureHead", "wide_parameters", "default_head"},
    "shopmtl.core.model.losses": {
        "masked_mse",
        "masked_bce",
        "masked_cross_entropy",
        "DEFAULT_LOSSES",
    },
    "shopmtl.core.model.outputs": {"activate", "predict", "default_decode"},
    "shopmtl.registry.decoding": {"decode_by_kind"},
    "shopmtl.registry.metrics": {"log1p_regression_metrics"},
}

__getattr__ = moved_to(__name__, _MOVED, public={"decode_by_kind", "log1p_regression_metrics"})
