"""Common clinical abbreviations, written out in the words the ICD-10-CM tabular uses.

A small table, not a dictionary of medicine: each entry is an abbreviation that clinical
notes use for a condition ICD-10-CM names, and that rarely means anything else. Those of
three letters or fewer are only read as written, in capitals ("MI", not "mi"); longer
ones in any case ("copd").
"""

from __future__ import annotations

# Abbreviation (upper case) -> the words it stands for.
CLINICAL_ABBREVIATIONS: dict[str, str] = {
    "AF": "atrial fibrillation",
    "AFIB": "atrial fibrillation",
    "AKI": "acute kidney failure",
    "AMI": "acute myocardial infarction",
    "BPH": "benign prostatic hyperplasia",
    "CAD": "coronary artery disease",
    "CHF": "congestive heart failure",
    "CKD": "chronic kidney disease",
    "COPD": "chronic obstructive pulmonary disease",
    "CVA": "stroke",
    "DM": "diabetes mellitus",
    "DM1": "type 1 diabetes mellitus",
    "DM2": "type 2 diabetes mellitus",
    "DVT": "deep vein thrombosis",
    "ESRD": "end stage renal disease",
    "GERD": "gastro-esophageal reflux disease",
    "HCC": "hepatocellular carcinoma",
    "HTN": "hypertension",
    "IBS": "irritable bowel syndrome",
    "IDDM": "type 1 diabetes mellitus",
    "MI": "myocardial infarction",
    "NIDDM": "type 2 diabetes mellitus",
    "OSA": "obstructive sleep apnea",
    "PVD": "peripheral vascular disease",
    "SLE": "systemic lupus erythematosus",
    "T1DM": "type 1 diabetes mellitus",
    "T2DM": "type 2 diabetes mellitus",
    "TB": "tuberculosis",
    "UTI": "urinary tract infection",
    "WPW": "Wolff-Parkinson-White syndrome",
}
CASE_FREE_LENGTH = 4  # abbreviations this long or longer are read in any case


def expand_abbreviation(word: str) -> str | None:
    """The words `word` abbreviates, or None when it is no abbreviation of the table."""
    upper = word.upper()
    expansion = CLINICAL_ABBREVIATIONS.get(upper)
    if expansion is None or (len(word) < CASE_FREE_LENGTH and word != upper):
        return None
    return expansion
