"""shopmtl's building blocks (shopmtl.core.model): the masked losses and the feature head."""

from __future__ import annotations

import pytest
import torch
from shopmtl.core.model.heads import FeatureHead, wide_parameters
from shopmtl.core.model.losses import (
    DEFAULT_LOSSES,
    masked_bce,
    masked_cross_entropy,
    masked_mse,
)
from torch.nn import functional as F

NAN = float("nan")


# ----------------------------------------------------------------------------- masked losses


def _present_only(loss_fn, outputs, labels):
    """The same loss computed by hand on the rows whose label is present."""
    keep = ~torch.isnan(labels)
    return loss_fn(outputs.reshape(labels.shape)[keep], labels[keep])


def test_masked_mse_ignores_missing_labels():
    torch.manual_seed(0)
    outputs = torch.randn(6, 1, requires_grad=True)
    labels = torch.tensor([[1.0], [NAN], [2.0], [NAN], [0.5], [3.0]])
    loss = masked_mse(outputs, labels)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, _present_only(F.mse_loss, outputs, labels))
    loss.backward()
    assert torch.all(outputs.grad[[1, 3]] == 0) and torch.all(outputs.grad[[0, 2, 4, 5]] != 0)


def test_masked_bce_ignores_missing_labels_per_entry():
    torch.manual_seed(0)
    outputs = torch.randn(4, 3, requires_grad=True)  # multilabel: NaN per entry
    labels = torch.tensor([[1.0, NAN, 0.0], [NAN, NAN, 1.0], [0.0, 1.0, NAN], [1.0, 1.0, 0.0]])
    loss = masked_bce(outputs, labels)
    assert torch.isfinite(loss)
    torch.testing.assert_close(
        loss, _present_only(F.binary_cross_entropy_with_logits, outputs, labels)
    )
    loss.backward()
    assert torch.all(outputs.grad[torch.isnan(labels)] == 0)
    binary = torch.randn(5, 1)
    flags = torch.tensor([[1.0], [NAN], [0.0], [NAN], [1.0]])
    torch.testing.assert_close(
        masked_bce(binary, flags), _present_only(F.binary_cross_entropy_with_logits, binary, flags)
    )


def test_masked_cross_entropy_ignores_missing_labels():
    torch.manual_seed(0)
    outputs = torch.randn(5, 4, requires_grad=True)
    labels = torch.tensor([[2.0], [NAN], [0.0], [3.0], [NAN]])
    loss = masked_cross_entropy(outputs, labels)
    keep = torch.tensor([0, 2, 3])
    torch.testing.assert_close(loss, F.cross_entropy(outputs[keep], torch.tensor([2, 0, 3])))
    loss.backward()
    assert torch.all(outputs.grad[[1, 4]] == 0)


@pytest.mark.parametrize(
    ("loss_fn", "shape", "label_shape"),
    [
        (masked_mse, (4, 1), (4, 1)),
        (masked_bce, (4, 3), (4, 3)),
        (masked_cross_entropy, (4, 5), (4, 1)),
    ],
)
def test_all_missing_gives_zero_with_a_gradient_path(loss_fn, shape, label_shape):
    outputs = torch.randn(*shape, requires_grad=True)
    loss = loss_fn(outputs, torch.full(label_shape, NAN))
    assert loss.item() == 0.0
    assert loss.requires_grad  # still connected to the graph (DDP needs every parameter used)
    loss.backward()
    assert outputs.grad is not None and torch.all(outputs.grad == 0)


def test_default_losses_cover_every_kind():
    assert DEFAULT_LOSSES == {
        "regression": masked_mse,
        "binary": masked_bce,
        "multilabel": masked_bce,
        "multiclass": masked_cross_entropy,
    }


def test_feature_head_wide_path_starts_at_zero_and_learns():

    from shopmtl.registry.spec import HeadInput, HeadSpec

    torch.manual_seed(0)
    head = FeatureHead(
        HeadSpec(
            hidden_size=8, n_numeric=2, categorical_cardinalities=(3,), has_pair=False, n_outputs=1
        )
    )
    x = HeadInput(
        text=torch.randn(16, 8),
        pair=None,
        numeric=torch.randn(16, 2),
        numeric_missing=torch.zeros(16, 2),
        categorical=torch.zeros(16, 1, dtype=torch.long),
    )
    head.eval()
    assert torch.equal(head.wide.weight, torch.zeros_like(head.wide.weight))
    before = head(x)
    # At initialisation the head is exactly its MLP; the wide path gets gradient from the start.
    mlp_only = head.mlp(
        torch.cat(
            [x.text, x.numeric, x.numeric_missing, head.embeddings[0](x.categorical[:, 0])], dim=-1
        )
    )
    torch.testing.assert_close(before, mlp_only)
    F.mse_loss(before, 3.0 * x.numeric[:, :1]).backward()
    assert head.wide.weight.grad[0, 0] < 0  # pushed towards the +3 slope on the first feature
    # A head without numeric or categorical features has no wide path.
    plain = FeatureHead(
        HeadSpec(
            hidden_size=8, n_numeric=0, categorical_cardinalities=(), has_pair=True, n_outputs=2
        )
    )
    assert plain.wide is None and plain.text_bag is None


def test_feature_head_bag_of_words_averages_token_weights():

    from shopmtl.registry.spec import HeadInput, HeadSpec

    head = FeatureHead(
        HeadSpec(
            hidden_size=8,
            n_numeric=0,
            categorical_cardinalities=(),
            has_pair=True,
            n_outputs=2,
            vocab_size=10,
            pad_token_id=0,
        )
    ).eval()
    assert set(map(id, wide_parameters(head))) == {
        id(head.text_bag.weight),
        id(head.pair_bag.weight),
    }
    text, pair = torch.randn(2, 8), torch.randn(2, 8)
    tokens = torch.tensor([[3, 4, 0], [5, 0, 0]])
    with torch.no_grad():
        head.text_bag.weight.copy_(torch.arange(20.0).reshape(10, 2))
        without = head(
            HeadInput(
                text=text,
                pair=pair,
                numeric=torch.zeros(2, 0),
                numeric_missing=torch.zeros(2, 0),
                categorical=torch.zeros(2, 0, dtype=torch.long),
            )
        )
        with_tokens = head(
            HeadInput(
                text=text,
                pair=pair,
                numeric=torch.zeros(2, 0),
                numeric_missing=torch.zeros(2, 0),
                categorical=torch.zeros(2, 0, dtype=torch.long),
                text_tokens=tokens,
                pair_tokens=tokens,
            )
        )
    # Mean of the rows of tokens 3 and 4 ((6, 7) and (8, 9)) and of token 5; padding left out.
    # The pair's bag is still zero.
    torch.testing.assert_close(with_tokens - without, torch.tensor([[7.0, 8.0], [10.0, 11.0]]))
