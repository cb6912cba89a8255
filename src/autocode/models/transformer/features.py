"""What a training or scoring step feeds the network: chunks to encode, or states encoded
once and reused every epoch: the encoder's token states (frozen mode), or its frozen lower
layers' chunk states, which the trained top layers read (top_k_layers mode)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from autocode.models.transformer.chunking import (
    ChunkBatch,
    ChunkedNote,
    chunk_tokens,
    collate,
    token_budget_batches,
)
from autocode.models.transformer.encoder import encoder_layers
from autocode.models.transformer.network import encode_tokens, gather_tokens

# Encoders whose layers read only the hidden states and the padding mask (`run_layers`).
TOP_LAYERS_MODEL_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra"})


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


class NoteStates(Protocol):
    """Each note's states (float32, on the CPU), by note: a list, or `StatesOnDisk`."""

    def __len__(self) -> int: ...

    def __getitem__(self, note: int) -> torch.Tensor: ...


class StatesOnDisk:
    """Each note's states read from its file when a batch asks for them: a fit keeps a
    batch's states in memory, not every note's (MiniLM's states of CodiEsp's train notes
    take 0.4 GB, of a MIMIC-size training set hundreds)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, note: int) -> torch.Tensor:
        path = self.paths[note]
        try:
            return load_file(path)["states"]
        except FileNotFoundError:
            raise FileNotFoundError(
                f"encoder states {path.name} are gone from {path.parent}: the cache_dir "
                "must stay in place while a fit reads it"
            ) from None


class CachedStates:
    """Each note's token states from the frozen encoder."""

    def __init__(self, states: NoteStates, sizes: Sequence[int]) -> None:
        self.states = states
        self.sizes = [max(1, size) for size in sizes]  # tokens per note

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


class CachedLowerStates:
    """Each note's chunk states after the encoder's frozen lower layers: its chunks'
    positions one chunk after another, as the top layers read them."""

    def __init__(self, notes: Sequence[ChunkedNote], states: NoteStates) -> None:
        self.notes = list(notes)
        self.states = states
        self.sizes = [chunk_tokens(note) for note in self.notes]

    def inputs(self, rows: Sequence[int], device: torch.device) -> tuple[torch.Tensor, ...]:
        """(chunk states, attention mask, token index, token mask), laid out as `collate`
        lays out the chunks' token ids."""
        batch = collate([self.notes[i] for i in rows], pad_id=0)
        chunks, width = batch.attention_mask.shape
        chosen = [self.states[i] for i in rows]
        states = torch.zeros(chunks, width, chosen[0].shape[-1])
        row = 0
        for i, note_states in zip(rows, chosen, strict=True):
            start = 0
            for ids in self.notes[i].chunk_ids:
                states[row, : len(ids)] = note_states[start : start + len(ids)]
                start, row = start + len(ids), row + 1
        masks = (batch.attention_mask, batch.token_index, batch.token_mask)
        return states.to(device), *(torch.from_numpy(a).to(device) for a in masks)


class TopLayersNetwork(nn.Module):
    """The encoder's top layers over chunk states of its frozen lower layers, then the head:
    what top_k_layers mode trains, without running the frozen layers every epoch.

    Its parameters are named as `CodingNetwork`'s (`encoder.*`, `head.*`): the layers it
    trains are the encoder's own, so the encoder then codes with them.
    """

    encoder: PreTrainedModel
    head: nn.Module

    def __init__(self, encoder: PreTrainedModel, head: nn.Module, frozen_layers: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.frozen_layers = frozen_layers

    def forward(
        self,
        states: torch.Tensor,
        attention_mask: torch.Tensor,
        token_index: torch.Tensor,
        token_mask: torch.Tensor,
    ) -> torch.Tensor:
        hidden = run_layers(self.encoder, states, attention_mask, self.frozen_layers)
        return self.head(gather_tokens(hidden, token_index), token_mask)


def run_layers(
    encoder: PreTrainedModel,
    states: torch.Tensor,
    attention_mask: torch.Tensor,
    first: int,
    last: int | None = None,
) -> torch.Tensor:
    """The encoder's layers `first` to `last` (excluded; all above by default) over
    (chunks, positions, hidden) states, the padding masked as BERT-like encoders mask it:
    a large negative number added to the attention scores of padded positions (eager and
    SDPA attention both read that mask, in every transformers version)."""
    padding = (1.0 - attention_mask[:, None, None, :].to(states.dtype)) * torch.finfo(
        states.dtype
    ).min
    for layer in encoder_layers(encoder)[first:last]:
        out = layer(states, padding)
        states = out[0] if isinstance(out, tuple) else out
    return states


def reads_lower_states(encoder: PreTrainedModel) -> bool:
    """Whether the encoder's top layers can run over its lower layers' states alone: its
    layers take the hidden states and the padding mask and nothing else (absolute position
    embeddings). MPNet's and DeBERTa's layers also read relative position terms their
    encoder computes: those are trained on whole passes (`CodingNetwork`)."""
    return getattr(encoder.config, "model_type", None) in TOP_LAYERS_MODEL_TYPES


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


def training_inputs(
    mode: str,
    top_k: int,
    encoder: PreTrainedModel,
    head: nn.Module,
    notes: tuple[ChunkInputs, ChunkInputs | None],
    budget: int,
    device: torch.device,
    directory: Path | None,
) -> tuple[nn.Module, Features, Features | None]:
    """What a fit trains, and what it feeds it from the (train, validation) notes: in
    frozen mode the head, over the encoder's token states; in top_k_layers mode (encoders
    that `reads_lower_states`) the top layers and the head, over the lower layers' chunk
    states; otherwise the whole network, over the chunks. States are encoded once (kept
    in `directory` when given)."""
    encoded: Callable[[ChunkInputs], Features]
    if mode == "frozen":
        module = head

        def encoded(chunks: ChunkInputs) -> Features:
            return cache_states(encoder, chunks, budget, device, directory)

    elif mode == "top_k_layers" and reads_lower_states(encoder):
        frozen = len(encoder_layers(encoder)) - top_k
        module = TopLayersNetwork(encoder, head, frozen)

        def encoded(chunks: ChunkInputs) -> Features:
            return cache_lower_states(encoder, chunks, frozen, budget, device, directory)

    else:
        return CodingNetwork(encoder, head), *notes
    train, validation = notes
    return module, encoded(train), None if validation is None else encoded(validation)


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
    kept on disk, one safetensors file per (encoder weights, note chunks), and read per
    batch: cross-fitting folds, reruns and benchmark modes never encode a note twice, and
    memory holds a batch's states. Without it, every note's are kept in memory."""

    def token_states(batch: ChunkBatch, notes: Sequence[ChunkedNote]) -> list[torch.Tensor]:
        inputs = (batch.input_ids, batch.attention_mask, batch.token_index)
        states = encode_tokens(encoder, *(torch.from_numpy(a).to(device) for a in inputs))
        return [states[k, : len(note.tokens)] for k, note in enumerate(notes)]

    encoded = _encoded_once(encoder, chunks, budget, directory, "", token_states)
    return CachedStates(encoded, [len(note.tokens) for note in chunks.notes])


def cache_lower_states(
    encoder: PreTrainedModel,
    chunks: ChunkInputs,
    frozen_layers: int,
    budget: int,
    device: torch.device,
    directory: Path | None = None,
) -> CachedLowerStates:
    """top_k_layers mode: each note's chunk states after the encoder's first
    `frozen_layers` layers, encoded once (kept on disk with `directory`, as `cache_states`
    keeps its states)."""

    def lower_states(batch: ChunkBatch, notes: Sequence[ChunkedNote]) -> list[torch.Tensor]:
        mask = torch.from_numpy(batch.attention_mask).to(device)
        embeddings = cast(nn.Module, encoder.embeddings)  # BERT-like: `reads_lower_states`
        embedded = embeddings(input_ids=torch.from_numpy(batch.input_ids).to(device))
        hidden = run_layers(encoder, embedded, mask, 0, frozen_layers)
        per_chunk = hidden[mask.bool()].split(mask.sum(1).tolist())  # real positions
        ends = np.cumsum([len(note.chunk_ids) for note in notes]).tolist()
        return [torch.cat(per_chunk[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    suffix = f"-layer{frozen_layers}"
    return CachedLowerStates(
        chunks.notes, _encoded_once(encoder, chunks, budget, directory, suffix, lower_states)
    )


def _encoded_once(
    encoder: PreTrainedModel,
    chunks: ChunkInputs,
    budget: int,
    directory: Path | None,
    suffix: str,
    encode: Callable[[ChunkBatch, Sequence[ChunkedNote]], list[torch.Tensor]],
) -> NoteStates:
    """`encode`'s tensor of each note (float32, CPU), encoded in batches of at most
    `budget` tokens, shortest notes first. With `directory`, each is written there (file
    `<note key><suffix>.safetensors`) unless an earlier run wrote it, and read back when
    asked for (`StatesOnDisk`); without it, all are kept in memory."""
    encoder.eval()
    paths = (
        None
        if directory is None
        else [directory / f"{key}{suffix}.safetensors" for key in _note_keys(encoder, chunks.notes)]
    )
    missing = [i for i in range(len(chunks.notes)) if paths is None or not paths[i].exists()]
    missing.sort(key=lambda i: chunks.sizes[i])  # little padding
    in_memory: dict[int, torch.Tensor] = {}
    with torch.inference_mode():
        for positions in token_budget_batches([chunks.sizes[i] for i in missing], budget):
            rows = [missing[p] for p in positions]
            notes = [chunks.notes[i] for i in rows]
            encoded = encode(collate(notes, chunks.pad_id), notes)
            for i, states in zip(rows, encoded, strict=True):
                # Not a view of the batch's tensor (and contiguous, as files need).
                states = states.float().cpu().clone(memory_format=torch.contiguous_format)
                if paths is None:
                    in_memory[i] = states
                else:
                    _save_atomically(states, paths[i])
    if paths is None:
        return [in_memory[i] for i in range(len(chunks.notes))]
    return StatesOnDisk(paths)


def _save_atomically(states: torch.Tensor, path: Path) -> None:
    """Written aside, then renamed into place: another fit (or `accelerate launch`
    process) reading the same cache sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    save_file({"states": states}, partial)
    partial.replace(path)


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
