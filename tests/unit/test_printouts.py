"""The outcome's informational printouts, read back as a patient, a pharmacist or a scanner
would: the PDF's text (pypdf), its metadata, and the bars of the key's barcode in the page's
drawing operators. That the fonts are read on first use, not at import, is
test_import_side_effects.py's (it sees any file consult opens while importing)."""

from __future__ import annotations

import io
import re
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from fnmatch import fnmatch
from functools import partial
from importlib import resources
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.pdfbase.ttfonts import TTFontFile

from consult.outcome.licence import make_licence
from consult.outcome.pesel import make_pesel
from consult.outcome.printouts import (
    PackagePrintout,
    Parties,
    PrintedPrescription,
    ReferralPrintout,
    SickLeavePrintout,
    package_pdf,
    referral_pdf,
    sick_leave_pdf,
)

ROOT = Path(__file__).resolve().parents[2]
POLISH = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"
KEY = "0071" + "2345678901" * 4  # 44 digits; the leading zeros must survive
PESEL = make_pesel(date(1984, 5, 14), 135, "male")
LICENCE = make_licence(425740)
# 12:05 UTC is 13:05 in Warsaw in winter.
ISSUED = datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
# Code 128 of 44 digits: start, 22 digit pairs (code set C), check symbol: 3 bars each; the
# stop symbol has 4.
KEY_BARS = 24 * 3 + 4

PARTIES = Parties(
    clinic_name="Przychodnia Łąka",
    patient_name="Józef Żółtowski",
    pesel=PESEL,
    doctor_name="dr Ewa Świątek",
    licence_number=LICENCE,
)
IBUPROFEN = PrintedPrescription(
    product_name="Ibuprofen Żółć",
    strength="200 mg",
    form="tabletki powlekane",
    pack_size=20,
    packs=2,
    dosage_instruction="1 tabletka co 8 godzin przy bólu",
    payment_level="100%",
    dispense_from=None,
    valid_until=date(2025, 3, 31),
    cancelled=False,
)
AMOXICILLIN = PrintedPrescription(
    product_name="Amotaks",
    strength="500 mg",
    form="kapsułki",
    pack_size=16,
    packs=1,
    dosage_instruction="1 kapsułka 3 razy dziennie",
    payment_level="R",
    dispense_from=date(2025, 3, 3),
    valid_until=date(2025, 3, 10),
    cancelled=False,
)
PACKAGE = PackagePrintout(
    parties=PARTIES,
    key=KEY,
    access_code="0427",
    issued_at=ISSUED,
    prescriptions=[IBUPROFEN, AMOXICILLIN],
)
REFERRAL = ReferralPrintout(
    parties=PARTIES,
    key=KEY,
    access_code="9051",
    issued_at=ISSUED,
    kind="specialist_consultation",
    target="Kardiologia",
    diagnosis_code="I10",
    diagnosis_title="Essential (primary) hypertension",
    reason="Ciśnienie źle kontrolowane mimo leczenia",
    priority="urgent",
    cancelled=False,
)
SICK_LEAVE = SickLeavePrintout(
    parties=PARTIES,
    issued_at=ISSUED,
    start=date(2025, 2, 27),
    end=date(2025, 3, 7),
    recommendation=2,
    diagnosis_code="J06.9",
    diagnosis_title="Acute upper respiratory infection, unspecified",
    letter_codes=["B", "E"],
    employer_nip="5260250274",
    backdating_reason="Gorączka od czwartku, wizyta w sobotę",
    cancelled=False,
)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def bars(pdf: bytes) -> int:
    """The filled rectangles on the first page: a Code 128 barcode draws one per bar, and
    nothing else on a printout is drawn as a filled rectangle."""
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents()
    assert content is not None
    return len(re.findall(rb" re f\*", content.get_data()))


def assert_parties(text: str) -> None:
    assert "Przychodnia Łąka" in text
    assert "Józef Żółtowski" in text
    assert re.search(rf"PESEL\s+{PESEL}", text)
    assert "dr Ewa Świątek" in text
    assert re.search(rf"Licence no\.\s+{LICENCE}", text)
    assert "2025-03-01 13:05 (Europe/Warsaw)" in text


def test_a_package_shows_who_what_until_when_and_how_to_get_it() -> None:
    pdf = package_pdf(PACKAGE)
    text = text_of(pdf)
    assert "Informational printout of an e-prescription" in text
    assert_parties(text)
    assert f"Key: {KEY}" in text
    assert re.search(r"Prescription access code\s+0427", text)
    assert "1. Ibuprofen Żółć 200 mg, tabletki powlekane" in text
    assert re.search(r"Pack size x packs\s+20 x 2", text)
    assert re.search(r"Dosage\s+1 tabletka co 8 godzin przy bólu", text)
    assert re.search(r"Payment level\s+100%", text)
    # Without a "from" date, it is dispensable from the day of issue.
    assert re.search(r"To be dispensed from\s+2025-03-01\s+Valid until\s+2025-03-31", text)
    assert "2. Amotaks 500 mg, kapsułki" in text
    assert re.search(r"To be dispensed from\s+2025-03-03\s+Valid until\s+2025-03-10", text)
    assert "CANCELLED" not in text
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_the_key_is_drawn_as_a_code_128_barcode() -> None:
    assert bars(package_pdf(PACKAGE)) == KEY_BARS
    assert bars(referral_pdf(REFERRAL)) == KEY_BARS
    assert bars(sick_leave_pdf(SICK_LEAVE)) == 0  # an e-ZLA has no key


def test_the_issue_time_and_day_are_the_clinics() -> None:
    # 23:30 UTC on 31 March is 01:30 on 1 April in Warsaw (summer time).
    late = replace(PACKAGE, issued_at=datetime(2025, 3, 31, 23, 30, tzinfo=UTC))
    text = text_of(package_pdf(late))
    assert "2025-04-01 01:30 (Europe/Warsaw)" in text
    assert re.search(r"To be dispensed from\s+2025-04-01", text)


def test_a_cancelled_prescription_is_marked_and_a_wholly_cancelled_package_too() -> None:
    one = replace(PACKAGE, prescriptions=[IBUPROFEN, replace(AMOXICILLIN, cancelled=True)])
    text = text_of(package_pdf(one))
    assert "2. Amotaks 500 mg, kapsułki - CANCELLED" in text
    assert text.count("CANCELLED") == 1  # the item only: the other one is still valid
    both = replace(PACKAGE, prescriptions=[replace(p, cancelled=True) for p in one.prescriptions])
    assert text_of(package_pdf(both)).count("CANCELLED") == 3  # each item, and the page


def test_a_referral_shows_what_for_how_urgent_and_its_key() -> None:
    text = text_of(referral_pdf(REFERRAL))
    assert "Informational printout of an e-referral" in text
    assert_parties(text)
    assert f"Key: {KEY}" in text
    assert re.search(r"Referral access code\s+9051", text)
    assert re.search(r"Referral to\s+Specialist consultation", text)
    assert re.search(r"Specialty or test\s+Kardiologia", text)
    assert re.search(r"Diagnosis \(ICD-10\)\s+I10 Essential \(primary\) hypertension", text)
    assert re.search(r"Priority\s+Urgent", text)
    assert "Ciśnienie źle kontrolowane mimo leczenia" in text
    assert "CANCELLED" not in text
    assert "CANCELLED" in text_of(referral_pdf(replace(REFERRAL, cancelled=True)))


def test_a_sick_leave_shows_the_period_recommendation_and_codes() -> None:
    text = text_of(sick_leave_pdf(SICK_LEAVE))
    assert "Informational printout of a sick leave certificate (e-ZLA)" in text
    assert_parties(text)
    assert re.search(r"Period\s+2025-02-27 to 2025-03-07 \(9 days\)", text)
    assert re.search(r"Recommendation\s+2 \(may walk\)", text)
    assert re.search(r"Diagnosis \(ICD-10\)\s+J06\.9 Acute upper respiratory", text)
    assert re.search(r"Letter codes\s+B, E", text)
    assert re.search(r"Employer's NIP\s+5260250274", text)
    assert "Gorączka od czwartku, wizyta w sobotę" in text
    assert "CANCELLED" not in text
    lying = replace(SICK_LEAVE, recommendation=1, letter_codes=[], employer_nip=None)
    text = text_of(sick_leave_pdf(replace(lying, backdating_reason=None, cancelled=True)))
    assert re.search(r"Recommendation\s+1 \(must lie down\)", text)
    assert re.search(r"Letter codes\s+none", text)
    assert re.search(r"Employer's NIP\s+not given", text)
    assert "before the day of issue" not in text
    assert "CANCELLED" in text


def test_long_texts_wrap_and_flow_onto_more_pages() -> None:
    long = replace(IBUPROFEN, dosage_instruction="Przyjmować po posiłku, popijając wodą. " * 13)
    pdf = package_pdf(replace(PACKAGE, prescriptions=[long] * 5))
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 2
    assert "5. Ibuprofen Żółć" in text_of(pdf)
    assert "Józef Żółtowski: informational printout" in pages[-1].extract_text()


def test_metadata_and_output_are_fixed() -> None:
    pdf = package_pdf(PACKAGE)
    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None
    assert meta.title == "Informational printout of an e-prescription"
    assert meta.author == "Przychodnia Łąka"
    assert meta.creator == "consult"
    assert package_pdf(PACKAGE) == pdf  # same printout, same bytes


def test_printouts_made_in_threads_at_once_are_the_ones_made_one_by_one() -> None:
    """The server makes them in worker threads. reportlab's font subsetting is shared by every
    document: without printouts._BUILDING, a round like this one failed (IndexError, KeyError)
    or mixed subsets about one time in five here, so this guards, it does not prove."""
    jobs = [partial(package_pdf, replace(PACKAGE, access_code=f"{n:04d}")) for n in range(16)]
    jobs += [partial(referral_pdf, replace(REFERRAL, access_code=f"{n:04d}")) for n in range(16)]
    one_by_one = [make() for make in jobs]
    with ThreadPoolExecutor(8) as pool:
        at_once = list(pool.map(lambda make: make(), jobs))
    assert at_once == one_by_one


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        package_pdf(replace(PACKAGE, issued_at=datetime(2025, 3, 1, 12, 5)))
    with pytest.raises(ValueError, match="a key has 44 digits"):
        package_pdf(replace(PACKAGE, key=KEY[:-1]))
    with pytest.raises(ValueError, match="an access code 4"):
        referral_pdf(replace(REFERRAL, access_code="12a4"))
    with pytest.raises(ValueError, match="at least one prescription"):
        package_pdf(replace(PACKAGE, prescriptions=[]))
    with pytest.raises(ValueError):
        sick_leave_pdf(replace(SICK_LEAVE, recommendation=3))
    with pytest.raises(ValueError):
        referral_pdf(replace(REFERRAL, kind="dentist"))


@pytest.mark.parametrize("file", ["NotoSans-Regular.ttf", "NotoSans-Bold.ttf"])
def test_the_shipped_fonts_have_every_polish_letter(file: str) -> None:
    data = resources.files("consult.outcome").joinpath(f"data/{file}").read_bytes()
    font = TTFontFile(io.BytesIO(data))
    assert [c for c in POLISH if ord(c) not in font.charToGlyph] == []
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["consult.outcome"]
    assert any(fnmatch(f"data/{file}", g) for g in globs)
    assert any(fnmatch("data/OFL.txt", g) for g in globs)
