"""Terms mined from CodiEsp-X mentions: normalisation, note filtering, the real file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from autocode.config import CodesConfig, MentionsConfig, load_config
from autocode.knowledge import CodeKnowledge, CodeSources
from autocode.knowledge.mined import (
    MAX_TERM_CHARS,
    MAX_TERM_WORDS,
    Mention,
    MinedTerms,
    fingerprints,
    mine_codiesp_x,
    normalise_mention,
    note_fingerprint,
    term_key,
)
from conftest import REPO_ROOT


def test_a_mention_is_normalised_to_lower_case_single_spaces_and_no_edge_punctuation() -> None:
    assert normalise_mention("  Rx\n  Tórax. ") == "rx tórax"
    assert normalise_mention("(HTA),") == "hta"
    assert normalise_mention("¿Edemas?") == "edemas"
    # Inner punctuation is part of the mention.
    assert normalise_mention("VIH-1 positivo") == "vih-1 positivo"


def test_mentions_with_the_same_content_words_are_one_term() -> None:
    assert term_key("edemas") == term_key("Edema") == ("edema",)
    mined = MinedTerms.from_mentions(
        [
            Mention("ICD10CM:R60.9", "Edemas", "note-a"),
            Mention("ICD10CM:R60.9", "edema", "note-b"),
            Mention("ICD10CM:R60.9", "fóvea", "note-b"),
            Mention("ICD10CM:R60.9", "(.)", "note-c"),  # no word: no term
            # Nine content words: a passage of the note, not a term; not kept.
            Mention(
                "ICD10CM:R60.9",
                "edema blando con fóvea hasta rodillas y tobillos desde hace tres semanas",
                "note-d",
            ),
        ]
    )
    assert mined.by_code == {
        "ICD10CM:R60.9": {
            "edemas": frozenset({"note-a", "note-b"}),
            "fóvea": frozenset({"note-b"}),
        }
    }
    assert len(mined) == 2


def test_a_term_is_used_only_where_enough_of_the_fits_notes_mention_it() -> None:
    mentions = [
        Mention("ICD10CM:N44.8", "teste aumentado", "a"),
        Mention("ICD10CM:N44.8", "teste aumentado", "b"),
        Mention("ICD10CM:N44.1", "quiste de epidídimo", "c"),
        Mention("ICD10CM:N44.8", "microcalcificaciones testiculares", "c"),
    ]
    once = MinedTerms.from_mentions(mentions, min_notes=1)
    assert once.terms("ICD10CM:N44.8", frozenset("abc")) == [
        "teste aumentado",  # two notes: first
        "microcalcificaciones testiculares",
    ]
    assert once.terms("ICD10CM:N44.8", frozenset("a")) == ["teste aumentado"]
    assert once.terms("ICD10CM:N44.8", frozenset("xyz")) == []
    assert once.terms("ICD10CM:R52", frozenset("abc")) == []
    # A family gets its codes' terms; a code is not its family.
    assert once.family_terms("ICD10CM:N44", frozenset("c")) == [
        "microcalcificaciones testiculares",
        "quiste de epidídimo",
    ]
    assert once.terms("ICD10CM:N44", frozenset("c")) == []
    twice = MinedTerms.from_mentions(mentions, min_notes=2)
    assert twice.terms("ICD10CM:N44.8", frozenset("abc")) == ["teste aumentado"]
    # Two notes of the fit are needed, not two notes anywhere.
    assert twice.terms("ICD10CM:N44.8", frozenset("ac")) == []
    with pytest.raises(ValueError, match="min_notes must be >= 1, got 0"):
        MinedTerms({}, min_notes=0)


def test_a_note_fingerprint_is_the_sha256_of_its_text() -> None:
    text = "Varón de 37 años con edemas."
    assert note_fingerprint(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert fingerprints([text, text]) == frozenset({note_fingerprint(text)})


def test_the_real_trainx_file_gives_every_code_its_mentions(codiesp_root: Path) -> None:
    x_file = codiesp_root / "train" / "trainX.tsv"
    rows = [line.split("\t") for line in x_file.read_text("utf-8").splitlines() if line.strip()]
    assert len(rows) == 9181
    mined = mine_codiesp_x(x_file)

    # Every code of the file has terms (procedures cut to their 4-character prefix) but
    # four, whose every mention is a passage longer than a term may be.
    def code_of(label: str, code: str) -> str:
        if label == "DIAGNOSTICO":
            return f"ICD10CM:{code.upper()}"
        return f"ICD10PCS:{code.upper()[:4]}"

    codes = {code_of(label, code) for _, label, code, _, _ in rows}
    passages_only = codes - set(mined.by_code)
    assert set(mined.by_code) < codes
    assert passages_only == {"ICD10CM:M84.529", "ICD10CM:G90.511", "ICD10PCS:0HRN", "ICD10PCS:00HV"}
    for _, label, code, reference, _ in rows:
        if code_of(label, code) in passages_only:
            term = normalise_mention(reference)
            assert len(term_key(term)) > MAX_TERM_WORDS or len(term) > MAX_TERM_CHARS
    # "edema" and "edemas" are one term of R60.9, mined from the 63 notes that wrote either.
    edema_notes = {
        note_fingerprint((codiesp_root / "train" / "text_files" / f"{doc}.txt").read_text("utf-8"))
        for doc, _, code, reference, _ in rows
        if code == "r60.9" and reference.lower() in {"edema", "edemas"}
    }
    assert len(edema_notes) == 63
    assert mined.by_code["ICD10CM:R60.9"]["edemas"] == edema_notes
    # A single-span mention's text is read from the note at its offsets: the reference.
    assert "exposición a brucella" in mined.by_code["ICD10CM:Z20.818"]
    assert mined.lineage() == {"min_notes": 1, "terms": len(mined), "language": "es"}


def test_a_file_not_named_as_a_codiesp_x_file_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "train" / "mentions.tsv"
    with pytest.raises(ValueError, match=r"mentions.tsv: expected a CodiEsp-X file"):
        mine_codiesp_x(wrong)


def test_the_config_names_the_mentions_file_and_its_minimum(
    codiesp_root: Path, tmp_path: Path
) -> None:
    x_file = codiesp_root / "train" / "trainX.tsv"
    config = CodesConfig(mentions=MentionsConfig(file=str(x_file), min_notes=2))
    sources = config.sources(language="es")
    assert (sources.mentions, sources.mention_min_notes) == (x_file, 2)
    assert sources.mention_language == "es"
    assert config.sources(language="en").mention_language == "en"
    knowledge = CodeKnowledge(sources)
    assert knowledge.mined is not None and knowledge.mined.min_notes == 2
    lineage = knowledge.lineage()
    assert lineage["files"]["mentions"]["path"] == str(x_file)
    assert lineage["mined_terms"] == {
        "min_notes": 2,
        "terms": len(knowledge.mined),
        "language": "es",
    }
    # No mentions named: nothing mined.
    assert CodeKnowledge(CodeSources()).mined is None
    with pytest.raises(FileNotFoundError, match=r"codes.mentions.file: no file at .*missing"):
        CodesConfig(mentions=MentionsConfig(file=str(tmp_path / "missing"))).sources(language="es")
    with pytest.raises(ValidationError, match=r"min_notes\n.*greater than or equal to 1"):
        MentionsConfig(file=str(x_file), min_notes=0)


def test_a_config_turns_mining_on_with_an_override(codiesp_root: Path) -> None:
    x_file = codiesp_root / "train" / "trainX.tsv"
    config = load_config(
        REPO_ROOT / "configs" / "tfidf.yaml",
        ["data.language=es", f"codes.mentions={{file: {x_file}, min_notes: 2}}"],
    )
    assert config.codes.mentions == MentionsConfig(file=str(x_file), min_notes=2)
    # The best config's terms are made in its notes' language (English: projected).
    best = load_config(REPO_ROOT / "configs" / "codiesp-best.yaml")
    assert best.data.language == "en" and best.codes.mentions is not None
    assert best.codes.sources(language=best.data.language).mention_language == "en"
    assert load_config(REPO_ROOT / "configs" / "tfidf.yaml").codes.mentions is None
