"""What a training or scoring step feeds the network: chunks to encode, or (frozen mode)
token states encoded once and reused every epoch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from autocode.models.transformer.chunking import (
    ChunkedNote,
    chunk_tokens,
    collate,
    token_budget_batches,
)
from autocode.models.transformer.network import encode_tokens


class Features(Protocol):
    """Notes as network inputs; `sizes` is what each note costs a step, in tokens."""

    @property
    def sizes(self) -> list[int]: ...

    def inputs(self, rows: Sequence[int], device: torch.device) -> tuple[torch.Tensor, ...]: ...


class ChunkInputs:
    """Token ids of each note's chunks; the network runs the encoder on them."""

    def __init__(self, notes: Sequence[ChunkedNote], pad_id: int) -> None:
        self.notes = list(notes)
        self.pad_id = pad_id
        # Read per note on every step's batching: computed once, not per read.
        self.sizes = [chunk_tokens(note) for note in self.notes]

    def inputs(self, rows: Sequence[int], device: torch.device) -> tuple[torch.Tensor, ...]:
        batch = collate([self.notes[i] for i in rows], self.pad_id)
        arrays = (batch.input_ids, batch.attention_mask, batch.token_index, batch.token_mask)
        return tuple(torch.from_numpy(a).to(device) for a in arrays)


class CachedStates:
    """Each note's token states from the frozen encoder (float32, on the CPU)."""

    def __init__(self, states: Sequence[torch.Tensor]) -> None:
        self.states = list(states)
        self.sizes = [max(1, len(s)) for s in self.states]  # computed once, read per note

    def inputs(self, rows: Sequence[int], device: torch.device) -> tuple[torch.Tensor, ...]:
        chosen = [self.states[i] for i in rows]
        longest = max(1, max(len(s) for s in chosen))
        hidden = chosen[0].shape[-1]
        states = torch.zeros(len(chosen), longest, hidden)
        mask = torch.zeros(len(chosen), longest, dtype=torch.bool)
        for k, s in enumerate(chosen):
            states[k, : len(s)] = s
            mask[k, : len(s)] = True
        return states.to(device), mask.to(device)


class CodingNetwork(nn.Module):
    """Encoder over chunks, head over each note's gathered token states."""

    encoder: PreTrainedModel
    head: nn.Module

    def __init__(self, encoder: PreTrainedModel, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_index: torch.Tensor,
        token_mask: torch.Tensor,
    ) -> torch.Tensor:
        states = encode_tokens(self.encoder, input_ids, attention_mask, token_index)
        return self.head(states, token_mask)


def run_in_batches(
    features: Features,
    budget: int,
    device: torch.device,
    step: Callable[..., torch.Tensor],
) -> list[torch.Tensor]:
    """`step(*inputs)` over every note, shortest first (little padding), one CPU tensor
    per note in input order."""
    order = np.argsort(features.sizes, kind="stable")
    sizes = [features.sizes[i] for i in order]
    results: list[torch.Tensor | None] = [None] * len(order)
    with torch.inference_mode():
        for positions in token_budget_batches(sizes, budget):
            rows = [int(order[p]) for p in positions]
            out = step(*features.inputs(rows, device)).float().cpu()
            for k, row in enumerate(rows):
                results[row] = out[k]
    return [r for r in results if r is not None]


def cache_states(
    encoder: PreTrainedModel,
    chunks: ChunkInputs,
    budget: int,
    device: torch.device,
    directory: Path | None = None,
) -> CachedStates:
    """Frozen mode: each note's token states, encoded once. With `directory`, states are
    also kept on disk, one safetensors file per (encoder weights, note chunks), so that
    cross-fitting folds, reruns and benchmark modes never encode a note twice."""
    encoder.eval()
    lengths = [len(note.tokens) for note in chunks.notes]
    keys = _note_keys(encoder, chunks.notes) if directory is not None else []
    found: dict[int, torch.Tensor] = {}
    if directory is not None:
        for i, key in enumerate(keys):
            path = directory / f"{key}.safetensors"
            if path.exists():
                found[i] = load_file(path)["states"]
    missing = [i for i in range(len(chunks.notes)) if i not in found]

    def states(*inputs: torch.Tensor) -> torch.Tensor:
        return encode_tokens(encoder, *inputs[:3])

    todo = ChunkInputs([chunks.notes[i] for i in missing], chunks.pad_id)
    for i, encoded in zip(missing, run_in_batches(todo, budget, device, states), strict=True):
        found[i] = encoded[: lengths[i]].clone()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            save_file({"states": found[i].contiguous()}, directory / f"{keys[i]}.safetensors")
    return CachedStates([found[i] for i in range(len(chunks.notes))])


def _note_keys(encoder: PreTrainedModel, notes: Sequence[ChunkedNote]) -> list[str]:
    """A name per note that changes with the encoder's weights or the note's chunks (not
    its text: cache file names must not be derived from what a note says in clear)."""
    weights = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    keys = []
    for note in notes:
        digest = weights.copy()
        for ids in note.chunk_ids:
            digest.update(ids.tobytes() + b"|")
        digest.update(note.token_chunk.tobytes() + note.token_position.tobytes())
        keys.append(digest.hexdigest())
    return keys
