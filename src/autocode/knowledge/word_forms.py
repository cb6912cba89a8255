"""Words a note and the ICD-10-CM tabular spell differently, mapped to one form.

Notes say "ovarian carcinoma", the tabular "Malignant neoplasm of ovary"; notes say
"renal", the tabular mostly "kidney". Each word here is rewritten, in notes and in code
names alike, to the tabular's words, so that both meet. A small table of the spellings
that matter most in clinical narrative; each entry is one word, so that it applies at
the word level without changing what a name's other words mean.
"""

from __future__ import annotations

# Lower-case word -> the tabular's word(s).
TABULAR_WORDS: dict[str, str] = {
    # Organ adjectives -> the organ.
    "renal": "kidney",
    "nephric": "kidney",
    "hepatic": "liver",
    "pulmonary": "lung",
    "gastric": "stomach",
    "ovarian": "ovary",
    "testicular": "testis",
    "prostatic": "prostate",
    "vesical": "bladder",
    "cardiac": "heart",
    "cerebral": "brain",
    "pancreatic": "pancreas",
    "splenic": "spleen",
    "uterine": "uterus",
    "cervical": "cervix",
    "penile": "penis",
    "scrotal": "scrotum",
    "urethral": "urethra",
    "ureteral": "ureter",
    "adrenal": "adrenal",
    "thyroidal": "thyroid",
    "colonic": "colon",
    "rectal": "rectum",
    "esophageal": "esophagus",
    "oesophageal": "esophagus",
    "duodenal": "duodenum",
    "mammary": "breast",
    "cutaneous": "skin",
    "osseous": "bone",
    "vertebral": "vertebra",
    # Tumours: the tabular's words.
    "carcinoma": "malignant neoplasm",
    "cancer": "malignant neoplasm",
    "malignancy": "malignant neoplasm",
    "adenocarcinoma": "malignant neoplasm",
    "tumor": "neoplasm",
    "tumour": "neoplasm",
    "neoplasia": "neoplasm",
    "metastasis": "secondary malignant neoplasm",
    "metastases": "secondary malignant neoplasm",
    "metastatic": "secondary malignant neoplasm",
    # Other clinical spellings.
    "arthrosis": "osteoarthritis",
    "haematuria": "hematuria",
    "anaemia": "anemia",
    "oedema": "edema",
    "diarrhoea": "diarrhea",
    "oesophagus": "esophagus",
    "haemorrhage": "hemorrhage",
    "bleeding": "hemorrhage",
    "lithiasis": "calculus",
    "stone": "calculus",
    "stones": "calculus",
}


def tabular_words(word: str) -> str | None:
    """The tabular's spelling of a lower-case `word`, or None where it has none here."""
    return TABULAR_WORDS.get(word)
