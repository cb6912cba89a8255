"""The CodiEsp loader against the real train and dev files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from autocode.corpus.codiesp import Mention, read_codiesp_mentions
from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadOptions, detect_format, load_notes

# Counted independently with coreutils over the TSV files (procedures cut to 4 chars, deduplicated).
EXPECTED = {
    "train": {"documents": 500, "ICD10CM": 5639, "ICD10PCS": 1524, "distinct_cm": 1767},
    "dev": {"documents": 250, "ICD10CM": 2677, "ICD10PCS": 794, "distinct_cm": 1158},
}

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("split", ["train", "dev"])
def test_counts_match_the_tsv_files(codiesp_root: Path, split: str) -> None:
    loaded = load_notes(codiesp_root, LoadOptions(format="codiesp", splits=(split,)))
    expected = EXPECTED[split]
    codes = [code for codes in loaded.table.column("codes").to_pylist() for code in codes]
    per_system = Counter(code.split(":")[0] for code in codes)
    assert loaded.table.num_rows == expected["documents"]
    assert per_system["ICD10CM"] == expected["ICD10CM"]
    assert per_system["ICD10PCS"] == expected["ICD10PCS"]
    assert len({c for c in codes if c.startswith("ICD10CM:")}) == expected["distinct_cm"]
    assert loaded.report.read == expected["documents"]
    assert loaded.report.quarantined_total == 0
    assert set(loaded.table.column("split").to_pylist()) == {split}


def test_first_document_codes_are_canonical(codiesp_root: Path) -> None:
    loaded = load_notes(codiesp_root, LoadOptions(splits=("train",)))
    rows = loaded.table.to_pylist()
    first = next(row for row in rows if row["note_id"] == "S0004-06142005000700014-1")
    assert "ICD10CM:N44.8" in first["codes"]
    assert "ICD10CM:Z20.818" in first["codes"]
    # Full PCS codes are cut to the 4-character prefix CodiEsp scores.
    assert "ICD10PCS:BW03" in first["codes"]
    assert all(len(c.split(":")[1]) == 4 for c in first["codes"] if c.startswith("ICD10PCS"))
    assert first["text"].strip()


def test_spanish_text_differs_from_english(codiesp_root: Path) -> None:
    english = load_notes(codiesp_root, LoadOptions(splits=("dev",), language="en")).table
    spanish = load_notes(codiesp_root, LoadOptions(splits=("dev",), language="es")).table
    assert english.column("note_id").to_pylist() == spanish.column("note_id").to_pylist()
    assert english.column("codes").to_pylist() == spanish.column("codes").to_pylist()
    assert english.column("text")[0].as_py() != spanish.column("text")[0].as_py()


def test_format_is_detected(codiesp_root: Path) -> None:
    assert detect_format(codiesp_root) == "codiesp"


def test_a_root_that_does_not_exist_is_named_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nowhere: no such directory"):
        load_notes(tmp_path / "nowhere", LoadOptions(format="codiesp"))


def test_unknown_split_names_the_available_ones(codiesp_root: Path) -> None:
    with pytest.raises(SourceError, match=r"'nosuch' not found \(have \['dev', 'train'\]\)"):
        load_notes(codiesp_root, LoadOptions(format="codiesp", splits=("nosuch",)))


def test_codes_without_a_text_file_are_quarantined(tmp_path: Path) -> None:
    split_dir = tmp_path / "test"
    (split_dir / "text_files_en").mkdir(parents=True)
    (split_dir / "text_files_en" / "doc-1.txt").write_text("Patient with orchitis.\n")
    (split_dir / "text_files_en" / "doc-2.txt").write_text("No findings.\n")
    (split_dir / "testD.tsv").write_text("doc-1\tn44.8\nghost\tr60.9\n")
    (split_dir / "testP.tsv").write_text("doc-1\tbw03zzz\n")
    loaded = load_notes(tmp_path, LoadOptions(), quarantine_path=tmp_path / "q.jsonl")
    rows = {row["note_id"]: row["codes"] for row in loaded.table.to_pylist()}
    assert rows == {"doc-1": ["ICD10CM:N44.8", "ICD10PCS:BW03"], "doc-2": []}
    assert loaded.report.to_dict()["quarantined_by_reason"] == {"codes_without_text": 1}
    assert '"reason": "codes_without_text"' in (tmp_path / "q.jsonl").read_text()


def test_mentions_point_at_their_text_in_the_loaded_spanish_notes(codiesp_root: Path) -> None:
    """CodiEsp-X offsets index the text the loader gives (Spanish, decoded as is): the
    pieces of every dev mention, joined by a space, spell its text reference."""
    mentions = read_codiesp_mentions(codiesp_root, "dev")
    spanish = load_notes(codiesp_root, LoadOptions(splits=("dev",), language="es")).table
    ids, texts_in_order = spanish.column("note_id").to_pylist(), spanish.column("text").to_pylist()
    texts = dict(zip(ids, texts_in_order, strict=True))
    references = [
        line.split("\t")[3]
        for line in (codiesp_root / "dev" / "devX.tsv").read_text(encoding="utf-8").splitlines()
    ]
    assert len(mentions) == len(references) == 4477
    spelled = [
        " ".join(texts[m.note_id][start:end] for start, end in m.spans).lower() for m in mentions
    ]
    disagree = [r for s, r in zip(spelled, references, strict=True) if s != r.lower()]
    # Annotation slips: a double space where an empty piece was, a piece one character long.
    assert len(disagree) == 3
    first = mentions[0]  # devX.tsv line 1: "ecografía renal derecha", bt41zzz, 307 316;348 361
    assert first == Mention("S0004-06142005000900016-1", "ICD10PCS:BT41", ((307, 316), (348, 361)))
    assert texts[first.note_id][307:316] == "ecografía"


def test_mentions_of_a_missing_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    with pytest.raises(SourceError, match="missing CodiEsp-X file"):
        read_codiesp_mentions(tmp_path, "dev")
