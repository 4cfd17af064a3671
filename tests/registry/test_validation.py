"""Task validation at registration (shopmtl.registry.validation, .dryrun): every problem a sentence with its fix."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from registry_fakes import problems_of, task
from shopmtl.registry.validation import validate_task
from torch import nn

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


# -------------------------------------------------------------------------- validation


def test_a_sound_task_has_no_problems():
    assert validate_task(task()) == []


def test_sound_tasks_of_every_kind_with_every_feature_pass():
    specs = [
        task(kind="binary"),
        task(kind="multiclass", classes=("a", "b", "c")),
        task(kind="multilabel", labels=("x", "y", "z")),
        task(text_pair="other", numeric=("n1", "n2"), categorical=("c1",), keys=("id",)),
        task(kind="multiclass", classes=("a", "b"), text_pair="other", categorical=("c1", "c2")),
    ]
    for spec in specs:
        assert validate_task(spec) == [], spec.kind


def test_not_a_taskspec():
    assert "not a TaskSpec" in validate_task({"name": "toy"})[0]


@pytest.mark.parametrize("bad", ["Basket-Size", "", "2nd", "has space"])
def test_name_must_be_an_identifier(bad):
    message = problems_of(task(name=bad))
    assert repr(bad) in message and "lower-case letters" in message


def test_name_problem_suggests_a_fix():
    assert "name='basket_size'" in problems_of(task(name="Basket-Size"))


def test_unknown_kind_lists_kinds_and_suggests_the_closest():
    message = problems_of(task(kind="regresion"))
    assert "kind 'regresion' is not a task kind" in message
    assert "did you mean 'regression'?" in message


def test_labels_must_not_be_empty():
    assert "labels is empty" in problems_of(task(labels=()))


def test_labels_as_a_plain_string_is_explained():
    assert "write labels=('label',)" in problems_of(task(labels="label"))


def test_single_label_kinds_take_one_column():
    message = problems_of(task(kind="binary", labels=("a", "b")))
    assert "exactly one label column" in message and "multilabel" in message


def test_label_that_is_also_an_input_is_a_leak():
    assert "both a label and a model input" in problems_of(task(numeric=("label",)))


def test_multiclass_needs_two_classes():
    message = problems_of(task(kind="multiclass", classes=("only",)))
    assert "at least 2 classes" in message and "kind='binary'" in message


def test_primary_metric_must_be_declared():
    message = problems_of(task(primary_metric="rmse"))
    assert "primary_metric 'rmse' is not in metric_directions" in message


def test_unknown_direction():
    message = problems_of(task(metric_directions={"mae": "down"}))
    assert "metric 'mae' has direction 'down'" in message and "'max', 'min', 'info'" in message


def test_primary_metric_must_be_comparable():
    message = problems_of(task(metric_directions={"mae": "info"}))
    assert "primary_metric 'mae' has direction 'info'" in message and "'max' or 'min'" in message


@pytest.mark.parametrize(
    "field", ["build_dataset", "metrics", "loss", "build_head", "decode", "baselines"]
)
def test_callables_must_be_callable(field):
    assert f"{field} is 3, not a callable" in problems_of(task(**{field: 3}))


def test_settings_must_be_a_dataclass_with_defaults():
    @dataclasses.dataclass
    class NoDefault:
        window: int

    assert "not a dataclass type" in problems_of(task(settings=dict))
    assert "without a default (window)" in problems_of(task(settings=NoDefault))


class _Wide(nn.Module):
    def __init__(self, spec, width):
        super().__init__()
        self.linear = nn.Linear(spec.hidden_size, width)

    def forward(self, x):
        return self.linear(x.text)


def test_head_width_must_fit_the_kind():
    message = problems_of(task(kind="binary", build_head=lambda spec: _Wide(spec, 3)))
    assert "head returned shape (4, 3) but kind 'binary' needs (4, 1)" in message
    assert "n_outputs=spec.n_outputs" in message


def test_head_width_for_multiclass_names_the_classes():
    message = problems_of(
        task(kind="multiclass", classes=("a", "b", "c"), build_head=lambda spec: _Wide(spec, 1))
    )
    assert "needs (4, 3)" in message and "one per class: 3" in message


def test_head_that_raises_on_the_dummy_batch():
    class NoPair(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.linear = nn.Linear(spec.hidden_size, 1)

        def forward(self, x):
            return self.linear(x.pair)  # breaks: the task declares no text_pair

    message = problems_of(task(build_head=NoPair))
    assert "build_head raised" in message and "dummy batch" in message


def test_build_head_must_return_a_module():
    assert "not a torch.nn.Module" in problems_of(task(build_head=lambda spec: lambda x: x.text))


def test_loss_must_skip_missing_labels():
    message = problems_of(task(loss=lambda outputs, labels: ((outputs - labels) ** 2).mean()))
    assert "nan" in message and "missing (NaN) label" in message and "masked_mse" in message


def test_loss_must_be_a_scalar():
    assert "not a scalar tensor" in problems_of(task(loss=lambda outputs, labels: outputs.abs()))


def test_loss_must_reach_the_head():
    message = problems_of(task(loss=lambda outputs, labels: torch.tensor(1.0)))
    assert "not connected to the head's outputs" in message


def test_decode_must_return_a_row_per_prediction():
    assert "decode returned" in problems_of(task(decode=lambda predictions: "oops"))


def test_validation_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert validate_task(task(numeric=("x",))) == []
    assert torch.equal(torch.rand(3), expected)
