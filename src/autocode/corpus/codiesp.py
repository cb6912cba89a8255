"""CodiEsp (CLEF eHealth 2020): one text file per document, codes in TSV files.

Layout per split `S`: `S/SD.tsv` (diagnoses, ICD-10-CM), `S/SP.tsv`
(procedures, ICD-10-PCS), `S/text_files_en/` (English machine translation)
or `S/text_files/` (Spanish originals). Procedure codes are truncated to
their 4-character prefix, the level at which the CodiEsp evaluation scores
procedures (half the gold procedure codes are only given at that level).

`S/SX.tsv` (CodiEsp-X) gives, per code of a document, the character spans of the Spanish
text behind it (`read_codiesp_mentions`): the gold against which evidence is scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autocode.codes import CodeError, normalize_code
from autocode.corpus.canonical import RawRow
from autocode.corpus.errors import SourceError
from autocode.corpus.quarantine import Reason

TEXT_DIRS = {"en": "text_files_en", "es": "text_files"}
CODE_FILES = {"D": "ICD10CM", "P": "ICD10PCS"}
MENTION_SYSTEMS = {"DIAGNOSTICO": "ICD10CM", "PROCEDIMIENTO": "ICD10PCS"}  # X file labels
PROCEDURE_PREFIX_CHARS = 4


def codiesp_splits(root: Path) -> list[str]:
    """Split names found under the root: directories holding `<split>D.tsv`."""
    return sorted(p.name for p in root.iterdir() if (p / f"{p.name}D.tsv").is_file())


def is_codiesp_root(path: Path) -> bool:
    return path.is_dir() and bool(codiesp_splits(path))


def read_codiesp_rows(
    root: Path, splits: list[str] | None = None, language: str = "en"
) -> Iterator[RawRow]:
    """Rows for each requested split (all found when None), documents in name order."""
    if not root.exists():
        raise SourceError(root, "no such directory")
    available = codiesp_splits(root) if root.is_dir() else []
    if not available:
        raise SourceError(root, "not a CodiEsp root (no <split>/<split>D.tsv found)")
    for split in splits or available:
        if split not in available:
            raise SourceError(root, f"CodiEsp split {split!r} not found (have {available})")
        yield from _split_rows(root / split, split, language)


def codiesp_row_count(root: Path, splits: list[str] | None, language: str) -> int:
    """The rows `read_codiesp_rows` yields: one per text file, plus coded ids without one."""
    available = codiesp_splits(root) if root.is_dir() else []
    total = 0
    for split in splits or available:
        text_dir = root / split / TEXT_DIRS.get(language, "")
        documents = {p.stem for p in text_dir.glob("*.txt")}
        total += len(documents | set(_read_codes(root / split, split)))
    return total


def _split_rows(split_dir: Path, split: str, language: str) -> Iterator[RawRow]:
    if language not in TEXT_DIRS:
        raise SourceError(split_dir, f"language {language!r} not one of {sorted(TEXT_DIRS)}")
    text_dir = split_dir / TEXT_DIRS[language]
    if not text_dir.is_dir():
        raise SourceError(text_dir, "missing CodiEsp text directory")
    codes = _read_codes(split_dir, split)
    text_files = sorted(text_dir.glob("*.txt"))
    for row, text_file in enumerate(text_files, start=1):
        doc_id = text_file.stem
        yield RawRow(
            source=str(text_file),
            row=row,
            note_id=doc_id,
            text=text_file.read_bytes(),
            codes=codes.pop(doc_id, []),
            split=split,
        )
    # Codes whose document has no text file: each becomes a quarantined row, not a silent loss.
    for offset, doc_id in enumerate(sorted(codes), start=len(text_files) + 1):
        yield RawRow(
            source=str(split_dir),
            row=offset,
            note_id=doc_id,
            text=None,
            codes=None,
            rejected=(Reason.CODES_WITHOUT_TEXT, f"{len(codes[doc_id])} codes, no text file"),
        )


def _read_codes(split_dir: Path, split: str) -> dict[str, list[str]]:
    codes: dict[str, list[str]] = defaultdict(list)
    for suffix, system in CODE_FILES.items():
        path = split_dir / f"{split}{suffix}.tsv"
        if not path.is_file():
            continue
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise SourceError(path, f"line {line_number}: expected doc_id<TAB>code")
            doc_id, value = fields[0].strip(), fields[1].strip()
            if system == "ICD10PCS":
                value = value[:PROCEDURE_PREFIX_CHARS]
            code = f"{system}:{value}"
            if code not in codes[doc_id]:
                codes[doc_id].append(code)
    return codes


@dataclass(frozen=True)
class Mention:
    """Text behind one gold code of a document: character spans [start, end) of the Spanish
    text (`text_files/`, as the loader decodes it), several where the mention is split."""

    note_id: str
    code: str  # canonical, procedures cut to their prefix as the loader cuts them
    spans: tuple[tuple[int, int], ...]


def read_codiesp_mentions(root: Path, split: str) -> list[Mention]:
    """The gold mentions of `split`'s CodiEsp-X file (`<split>/<split>X.tsv`), in file order.

    Its rows are `document, DIAGNOSTICO|PROCEDIMIENTO, code, text, spans`, the spans
    `start end` pairs joined by `;`, offsets into the Spanish originals. A few pieces are
    empty (`1446 1446`, an annotation slip): they cover no character and are left out.
    """
    path = root / split / f"{split}X.tsv"
    if not path.is_file():
        raise SourceError(path, "missing CodiEsp-X file")
    mentions = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            mentions.append(_mention(line, path, line_number))
    return mentions


def _mention(line: str, path: Path, line_number: int) -> Mention:
    fields = line.split("\t")
    if len(fields) != 5:
        raise SourceError(path, f"line {line_number}: expected 5 tab-separated fields")
    doc_id, label, value, _, positions = (field.strip() for field in fields)
    if label not in MENTION_SYSTEMS:
        raise SourceError(
            path, f"line {line_number}: label {label!r} not one of {sorted(MENTION_SYSTEMS)}"
        )
    system = MENTION_SYSTEMS[label]
    if system == "ICD10PCS":
        value = value[:PROCEDURE_PREFIX_CHARS]
    try:
        code = normalize_code(value, system)
        spans = tuple(span for piece in positions.split(";") if (span := _span(piece))[0] < span[1])
    except (CodeError, ValueError) as error:
        raise SourceError(path, f"line {line_number}: {error}") from None
    return Mention(doc_id, code, spans)


def _span(piece: str) -> tuple[int, int]:
    start, end = (int(offset) for offset in piece.split())
    if not 0 <= start <= end:
        raise ValueError(f"span {piece!r} is not 0 <= start <= end")
    return start, end
