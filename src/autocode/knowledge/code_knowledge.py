"""CodeKnowledge: what the code systems say about each code, from explicit sources."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from autocode.codes.cpt import CptCatalog
from autocode.codes.descriptions import describe, is_valid
from autocode.codes.hcpcs import HcpcsCatalog
from autocode.codes.systems import CodeError
from autocode.knowledge.mined import MinedTerms, mine_codiesp_x
from autocode.knowledge.sources import CodeSources
from autocode.knowledge.terms import code_terms


class CodeKnowledge:
    """Descriptions, terms and families of codes, and validity, for every code system.

    Built once at a run's entry point from `CodeSources` (reading the HCPCS and CPT files
    it names) and handed to whatever needs what codes mean: models, the per-code report,
    evaluation. `CodeKnowledge()` knows the packaged ICD tables only. With
    `sources.mentions`, it also holds terms mined from annotated training notes
    (`mined`), which a model asks for with the fingerprints of the notes it is fitted on.
    """

    def __init__(self, sources: CodeSources | None = None) -> None:
        self.sources = sources or CodeSources()
        self.hcpcs = None if self.sources.hcpcs is None else _hcpcs_at(self.sources.hcpcs)
        self.cpt = None if self.sources.cpt is None else CptCatalog.from_csv(self.sources.cpt)
        self.mined: MinedTerms | None = None
        if self.sources.mentions is not None:
            self.mined = mine_codiesp_x(
                self.sources.mentions,
                self.sources.mention_min_notes,
                self.sources.mention_language,
            )

    def describe(self, code: str) -> str | None:
        """The code's own listed description; None where none is known (see `codes.describe`)."""
        return describe(code, hcpcs=self.hcpcs, cpt=self.cpt)

    def is_valid(self, code: str) -> bool:
        return is_valid(code, hcpcs=self.hcpcs)

    def terms(self, code: str) -> list[str]:
        """The code's description, then its inclusion terms (see `terms.code_terms`)."""
        return code_terms(code, self._describe_or_none)

    def description(self, code: str) -> str:
        """What to show a reader: the code's own description, else its first term (a PCS
        prefix's shared words, a truncated code's nearest listed prefix); "" if none known."""
        return self._describe_or_none(code) or next(iter(self.terms(code)), "")

    def lineage(self) -> dict[str, Any]:
        """What this knowledge was built from, for a run's lineage (no file contents)."""
        lineage = self.sources.lineage()
        if self.mined is not None:
            lineage["mined_terms"] = self.mined.lineage()
        return lineage

    def _describe_or_none(self, code: str) -> str | None:
        try:
            return self.describe(code)
        except CodeError:
            return None


@lru_cache(maxsize=4)
def _hcpcs_at(path: Path) -> HcpcsCatalog:
    """The CMS release zip, or its fixed-width text file; parsed once per process."""
    if path.suffix.lower() == ".zip":
        return HcpcsCatalog.from_zip(path)
    return HcpcsCatalog.from_text(path)
