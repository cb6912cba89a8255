"""The heads: masked, numerically stable label attention; pooling; description start."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from autocode.models.transformer.network import (  # noqa: E402
    LabelAttentionHead,
    PoolingHead,
    initialise_from_descriptions,
    masked_softmax,
)


def states_and_mask(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three notes of 5, 2 and 0 tokens, padded to 5 with huge values (as if garbage)."""
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(3, 5, 16, generator=generator)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [False] * 5])
    states[~mask] = 1e4
    return states, mask


def test_padding_takes_no_attention_and_changes_no_logit() -> None:
    torch.manual_seed(0)
    head = LabelAttentionHead(hidden=16, attention_dim=8, n_labels=4, dropout=0.0).eval()
    states, mask = states_and_mask()
    weights = head.attention(states, mask)
    assert weights.shape == (3, 5, 4)
    assert torch.all(weights[~mask] == 0)
    assert torch.allclose(weights[0].sum(0), torch.ones(4))
    assert torch.allclose(weights[1].sum(0), torch.ones(4))
    assert torch.all(weights[2] == 0)  # an empty note: no weights, not NaN
    logits = head(states, mask)
    alone = head(states[1:2, :2], mask[1:2, :2])
    assert torch.allclose(logits[1], alone[0], atol=1e-6)
    assert torch.allclose(logits[2], head.bias)  # nothing read: the bias alone


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attention_stays_finite_under_autocast_with_large_logits(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    head = LabelAttentionHead(hidden=16, attention_dim=8, n_labels=4, dropout=0.0).eval()
    with torch.no_grad():
        # u · z reaches ~8e5: beyond fp16's 65504, where a half-precision softmax gives NaN.
        head.queries.fill_(1e5)
    states, mask = states_and_mask()
    naive = (torch.tanh(head.project(states)) @ head.queries.T).to(torch.float16)
    assert not torch.isfinite(naive).all()  # what fp16 logits would do
    with torch.autocast(device_type="cpu", dtype=dtype):
        weights = head.attention(states, mask)
        logits = head(states, mask)
    assert weights.dtype == torch.float32 and logits.dtype == torch.float32
    assert torch.isfinite(weights).all() and torch.isfinite(logits).all()
    assert torch.allclose(weights[0].sum(0), torch.ones(4))
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_masked_softmax_never_returns_nan() -> None:
    scores = torch.tensor([[1e30, -1e30, 0.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    weights = masked_softmax(scores, mask, dim=1)
    assert torch.equal(weights, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooling_heads_ignore_padding(pooling: str) -> None:
    torch.manual_seed(0)
    head = PoolingHead(hidden=16, n_labels=4, dropout=0.0, pooling=pooling).eval()
    states, mask = states_and_mask()
    logits = head(states, mask)
    assert torch.allclose(logits[1], head(states[1:2, :2], mask[1:2, :2])[0], atol=1e-6)
    assert torch.allclose(logits[2], head.linear.bias)
    assert torch.isfinite(logits).all()


def test_description_start_aims_each_label_at_its_description() -> None:
    torch.manual_seed(0)
    head = LabelAttentionHead(hidden=16, attention_dim=8, n_labels=3, dropout=0.0).eval()
    descriptions = torch.randn(3, 16)
    described = torch.tensor([True, True, False])
    untouched = head.queries[2].clone()
    prior = torch.tensor([0.5, 0.1, 0.0])
    initialise_from_descriptions(head, descriptions, described, prior)
    assert torch.allclose(head.bias[:2], torch.tensor([0.0, -2.1972246]))
    assert head.bias[2] < -9  # never seen: starts near zero probability, finite
    assert torch.equal(head.queries[2], untouched)
    # A note made of label 0's description tokens draws label 0's attention to them.
    note = torch.stack([descriptions[1], descriptions[0], descriptions[1]]).unsqueeze(0)
    weights = head.attention(note, torch.ones(1, 3, dtype=torch.bool))[0]
    assert int(weights[:, 0].argmax()) == 1
    assert weights[1, 1] < weights[0, 1]
    centred = descriptions[:2] - descriptions[:2].mean(0)
    assert torch.allclose(head.outputs[:2], centred / centred.norm(dim=-1, keepdim=True))
