"""The CMS fixed-width HCPCS parser, on handmade records and on the real 2020 release."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from autocode.codes import HcpcsCatalog, HcpcsEntry

HCPCS_ZIP = Path("hcpcs") / "2020-Alpha-Numeric-HCPCS-File.zip"


def _record(key: str, kind: str, long: str, short: str = "") -> str:
    """One line laid out as CMS does: code 1-5, record id 11, long 12-91, short 92-119."""
    return f"{key:>5}00100{kind}{long:<80}{short:<28}N\r"


DISCLAIMER = "Note regarding coverage (CMS\xae 2020)\r\n\r\nThis is neither an indicator 3...\r"


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    lines = [
        DISCLAIMER,
        _record("AD", "7", "Medical supervision by a physician: more than four", "Md supervision"),
        _record("AD", "8", "concurrent anesthesia procedures"),
        _record("A0428", "3", "Ambulance service, basic life support, non-emergency", "Bls"),
        _record("A0428", "4", "transport, (bls)"),
        _record("V5364", "3", "Dysphagia screening", "Dysphagia screening"),
    ]
    path = tmp_path / "HCPC2020_ANWEB_w_disclaimer.txt"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    return path


def test_parses_codes_modifiers_and_continuations(small_file: Path) -> None:
    catalog = HcpcsCatalog.from_text(small_file)
    assert catalog.codes == {
        "HCPCS:A0428": HcpcsEntry(
            "Ambulance service, basic life support, non-emergency transport, (bls)", "Bls"
        ),
        "HCPCS:V5364": HcpcsEntry("Dysphagia screening", "Dysphagia screening"),
    }
    assert catalog.modifiers == {
        "AD": HcpcsEntry(
            "Medical supervision by a physician: more than four concurrent anesthesia procedures",
            "Md supervision",
        )
    }
    assert catalog.describe("a0428") == catalog.codes["HCPCS:A0428"].long_description
    assert catalog.describe("HCPCS:A0429") is None


def test_from_zip_finds_the_release_file(small_file: Path, tmp_path: Path) -> None:
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(small_file, small_file.name)
        out.writestr("HCPC2020_README.txt", "not the data")
    assert HcpcsCatalog.from_zip(archive) == HcpcsCatalog.from_text(small_file)


def test_a_broken_line_after_the_first_record_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.txt"
    path.write_text(_record("A0428", "3", "Ambulance") + "\ngarbage\n", encoding="latin-1")
    with pytest.raises(ValueError, match="line 2: not an HCPCS record"):
        HcpcsCatalog.from_text(path)


def test_a_continuation_without_its_first_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "orphan.txt"
    path.write_text(_record("A0428", "4", "transport") + "\n", encoding="latin-1")
    with pytest.raises(ValueError, match="continuation of unknown code 'A0428'"):
        HcpcsCatalog.from_text(path)


def test_a_code_listed_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "twice.txt"
    line = _record("A0428", "3", "Ambulance")
    path.write_text(f"{line}\n{line}\n", encoding="latin-1")
    with pytest.raises(ValueError, match="line 2: 'A0428' is listed twice"):
        HcpcsCatalog.from_text(path)


@pytest.mark.integration
def test_real_2020_release(shared_data: Path) -> None:
    path = shared_data / HCPCS_ZIP
    if not path.is_file():
        pytest.skip(f"CMS HCPCS zip not found at {path}")
    catalog = HcpcsCatalog.from_zip(path)
    # 6,710 first-line code records and 369 modifier records in the 2020 file.
    assert len(catalog.codes) == 6710
    assert len(catalog.modifiers) == 369
    assert catalog.codes["HCPCS:A0428"] == HcpcsEntry(
        "Ambulance service, basic life support, non-emergency transport, (bls)", "Bls"
    )
    assert catalog.modifiers["LT"].long_description == (
        "Left side (used to identify procedures performed on the left side of the body)"
    )
    assert catalog.modifiers["AD"].long_description.endswith("anesthesia procedures")
