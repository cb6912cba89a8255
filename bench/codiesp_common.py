"""What the CodiEsp benches share: their common arguments and how they read a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from autocode.config import shared_data_dir
from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.schema import NoteSet

REPO = Path(__file__).resolve().parents[1]


def codiesp_arguments(description: str | None) -> argparse.ArgumentParser:
    """--data, --config (codiesp-best by default), --language and --json."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "codiesp")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "codiesp-best.yaml")
    parser.add_argument("--language", choices=("en", "es"), default="en")
    parser.add_argument("--json", action="store_true")
    return parser


def language_overrides(language: str) -> list[str]:
    """Config overrides for CodiEsp in `language`: Spanish notes name too few procedures
    in the English ICD-10-PCS names to fit a procedure open part on."""
    return [f"data.language={language}"] + (
        ["open_codes.procedures=false"] if language != "en" else []
    )


def codiesp_notes(root: Path, split: str, language: str) -> NoteSet:
    """One CodiEsp split's notes and codes, in `language`."""
    options = LoadOptions(format="codiesp", splits=(split,), language=language)
    table = load_notes(root, options).table
    return NoteSet(table.column("text").to_pylist(), table.column("codes").to_pylist())
