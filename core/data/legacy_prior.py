"""Opening a prior pickled by shopmtl before hook API 1.5 -- only with ``--allow-pickle``.

UNSAFE: a joblib file is a pickle, and unpickling runs whatever code the file names. This
module is the only place shopmtl calls ``joblib.load``, and only when the user passed
``--allow-pickle`` (or set ``allow_pickle: true``) for a run they trust. What it opens is
converted to the task's arrays-and-JSON state where the prior's ``Prior.state`` can describe
it, so a run or export written from it holds no pickle.
"""

from __future__ import annotations

from pathlib import Path

from shopmtl.core.data.priors import FittedPrior, PriorError, checked_state, chosen_prior
from shopmtl.registry.spec import TaskSpec


def load_pickled_prior(path: Path, task: str, spec: TaskSpec, name: str) -> FittedPrior:
    """The prior pickled at ``path``; its state too when the prior's ``Prior.state`` describes it."""
    import joblib  # only here: the user opted in to unpickling this run's priors

    try:
        fitted = joblib.load(path)  # noqa: S301 -- the user opted in (--allow-pickle), see above
    except (
        ImportError,
        AttributeError,
    ) as error:  # the plugin module or class that fitted it is gone
        raise PriorError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}); install the plugin (and "
            f"version) that trained the run's task '{task}'"
        ) from None
    if not isinstance(fitted, FittedPrior):
        raise PriorError(
            f"{path} holds a {type(fitted).__name__}, not a fitted shopmtl prior; train the run again"
        )
    model = fitted.model
    prior = chosen_prior(spec, name)
    state = None
    if model is not None and prior.state is not None:
        try:
            state = checked_state(task, name, prior.state(model))
        except Exception:  # noqa: BLE001 -- the old object may predate the state: it then stays unsaveable
            state = None
    return FittedPrior(name, model, state)
