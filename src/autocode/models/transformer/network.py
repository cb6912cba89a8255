"""The torch modules: an encoder over chunks, then a head over each note's tokens.

Label-wise attention (LAAT, as PLM-ICD uses it): each label scores every token of the
note, a softmax over the note's tokens weighs them, and the label's logit reads the
weighted token states. Its known divergence comes from attention logits overflowing in
half precision and from padding that takes softmax mass; here padding is masked before a
max-subtracted softmax, the logits are computed in float32 even under autocast, and a note
with no tokens at all gets zero weights rather than NaN.
"""

from __future__ import annotations

import math

import torch
from torch import nn

HEADS = ("label_attention", "mean", "max")


def encode_tokens(
    encoder: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_index: torch.Tensor,
) -> torch.Tensor:
    """(notes, T_max, hidden): each note's token states, gathered from its chunks."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return gather_tokens(hidden, token_index)


def gather_tokens(hidden: torch.Tensor, token_index: torch.Tensor) -> torch.Tensor:
    """(notes, T_max, hidden) from (chunks, positions, hidden) chunk states: `token_index`
    holds each note token's flat (chunk × positions) index."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    return flat[token_index.reshape(-1)].reshape(*token_index.shape, hidden.shape[-1])


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over `dim` in float32 where `mask` is True; zero elsewhere and for rows with
    nothing unmasked (an empty note), never NaN or inf."""
    scores = scores.float().masked_fill(~mask, torch.finfo(torch.float32).min)
    weights = torch.softmax(scores, dim=dim)  # subtracts the max: no overflow
    return weights * mask


class LabelAttentionHead(nn.Module):
    """z_t = tanh(W h_t); a_lt = softmax_t(u_l · z_t); logit_l = beta_l · sum_t a_lt h_t + b_l."""

    def __init__(self, hidden: int, attention_dim: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.project = nn.Linear(hidden, attention_dim, bias=False)
        self.queries = nn.Parameter(torch.empty(n_labels, attention_dim))
        self.outputs = nn.Parameter(torch.empty(n_labels, hidden))
        self.bias = nn.Parameter(torch.zeros(n_labels))
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.queries, std=1 / math.sqrt(attention_dim))
        nn.init.normal_(self.outputs, std=1 / math.sqrt(hidden))

    def attention(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(notes, T, labels) weights over each note's tokens, in float32."""
        keys = torch.tanh(self.project(states))
        # Float32 logits even under autocast: u · z summed over attention_dim can exceed
        # fp16's range once the queries grow, and a softmax of inf is NaN.
        with torch.autocast(device_type=states.device.type, enabled=False):
            scores = keys.float() @ self.queries.float().T
            return masked_softmax(scores, mask.unsqueeze(-1), dim=1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = self.attention(states, mask)
        with torch.autocast(device_type=states.device.type, enabled=False):
            read = torch.einsum("ntl,nth->nlh", weights, self.dropout(states).float())
            return (read * self.outputs.float()).sum(-1) + self.bias.float()


class PoolingHead(nn.Module):
    """One vector per note (mean or max over its tokens), then a linear layer: the
    comparison point for label-wise attention."""

    def __init__(self, hidden: int, n_labels: int, dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, n_labels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = states.float()
        present = mask.unsqueeze(-1)
        if self.pooling == "mean":
            pooled = (states * present).sum(1) / present.sum(1).clamp(min=1)
        else:
            lowest = torch.finfo(states.dtype).min
            pooled = states.masked_fill(~present, lowest).amax(1)
            pooled = torch.where(present.any(1), pooled, torch.zeros_like(pooled))
        return self.linear(self.dropout(pooled))


def make_head(
    kind: str, hidden: int, attention_dim: int, n_labels: int, dropout: float
) -> nn.Module:
    if kind == "label_attention":
        return LabelAttentionHead(hidden, attention_dim, n_labels, dropout)
    if kind in ("mean", "max"):
        return PoolingHead(hidden, n_labels, dropout, kind)
    raise ValueError(f"unknown head {kind!r}; valid: {', '.join(HEADS)}")


def initialise_from_descriptions(
    head: nn.Module, descriptions: torch.Tensor, described: torch.Tensor, prior: torch.Tensor
) -> None:
    """Start each label where its code description points.

    `descriptions` (labels, hidden) are the encoder's mean token states of each code's
    description; `described` marks the labels that have one; `prior` is each label's
    training frequency. A label's query attends first to tokens that look like its
    description, and its output weight favours notes that read like it: a rare code starts
    from what it means rather than from noise. Biases start at the log-odds of the prior,
    so the first steps don't spend themselves pushing 10k sigmoids down from 0.5.
    """
    with torch.no_grad():
        odds = prior.clamp(1e-4, 1 - 1e-4)
        if isinstance(head, LabelAttentionHead):
            head.bias.copy_(torch.log(odds / (1 - odds)))
        elif isinstance(head, PoolingHead):
            head.linear.bias.copy_(torch.log(odds / (1 - odds)))
        if not isinstance(head, LabelAttentionHead) or not described.any():
            return
        centred = descriptions - descriptions[described].mean(0)
        unit = centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        keys = torch.tanh(head.project(descriptions))
        keys = keys / keys.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        scale = math.sqrt(head.queries.shape[1])
        head.queries[described] = keys[described] * scale
        head.outputs[described] = unit[described]
