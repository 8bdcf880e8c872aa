"""Informational printouts of a consultation's outcome: a package of e-prescriptions, an
e-referral, a sick leave certificate (e-ZLA), each as a PDF the patient may print or show.

The page carries what the patient or the pharmacy needs: the clinic, the patient and PESEL,
the doctor and licence number, the issue time on the clinic's clock, the items, and for a
package or a referral its 44-digit key (in digits and as a Code 128 barcode, which pharmacy
scanners read) with the 4-digit access code in large type. A cancelled document carries a
large "CANCELLED" across every page.

Text is set in Noto Sans (data/NotoSans-*.ttf, SIL OFL 1.1, data/OFL.txt): PDF's built-in
Helvetica has no "ł", "ś" or "ż", and a system font may be missing on the machine. The fonts are
registered on first use, not at import. Output is invariant (fixed creation date and document
id), so the same printout gives the same bytes.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any, Final
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from consult.outcome.keys import CODE_DIGITS, KEY_DIGITS, is_access_code, is_key
from consult.outcome.referrals import Priority, ReferralKind
from consult.outcome.sick_leave import Recommendation
from consult.outcome.validity import CLINIC_ZONE_NAME, clinic_day, clinic_time

REGULAR: Final = "NotoSans"
BOLD: Final = "NotoSans-Bold"
CANCELLED: Final = "CANCELLED"
MARGIN: Final = 18 * mm
LABEL_WIDTH: Final = 42 * mm
WIDTH: Final = A4[0] - 2 * MARGIN  # of the text
_RED: Final = colors.HexColor("#b00020")
_GREY: Final = colors.HexColor("#555555")
# One printout is built at a time in a process: reportlab keeps a registered font's subsetting
# state per font, shared by every document, and two builds in threads at once can fail
# (IndexError in TTFontFace.makeSubset) or mix their subsets. Registering the fonts takes it
# too (re-entrant: a build may be the first use).
_BUILDING: Final = threading.RLock()

_KINDS: Final = {
    ReferralKind.SPECIALIST_CONSULTATION: "Specialist consultation",
    ReferralKind.DIAGNOSTIC_TEST: "Diagnostic test",
    ReferralKind.HOSPITAL: "Hospital treatment",
    ReferralKind.REHABILITATION: "Rehabilitation",
}
_PRIORITIES: Final = {Priority.ROUTINE: "Routine", Priority.URGENT: "Urgent"}
_RECOMMENDATIONS: Final = {
    Recommendation.MUST_LIE_DOWN: "1 (must lie down)",
    Recommendation.MAY_WALK: "2 (may walk)",
}


@dataclass(frozen=True)
class Parties:
    """Who issued the document, and to whom."""

    clinic_name: str
    patient_name: str
    pesel: str | None
    doctor_name: str
    licence_number: str


@dataclass(frozen=True)
class PrintedPrescription:
    product_name: str
    strength: str
    form: str
    pack_size: int
    packs: int
    dosage_instruction: str
    payment_level: str
    dispense_from: date | None
    valid_until: date
    cancelled: bool


@dataclass(frozen=True)
class PackagePrintout:
    parties: Parties
    key: str
    access_code: str
    issued_at: datetime  # aware; printed on the clinic's clock
    prescriptions: list[PrintedPrescription]


@dataclass(frozen=True)
class ReferralPrintout:
    parties: Parties
    key: str
    access_code: str
    issued_at: datetime
    kind: str  # a ReferralKind value
    target: str
    diagnosis_code: str
    diagnosis_title: str
    reason: str
    priority: str  # a Priority value
    cancelled: bool


@dataclass(frozen=True)
class SickLeavePrintout:
    parties: Parties
    issued_at: datetime
    start: date
    end: date
    recommendation: int  # a Recommendation value
    diagnosis_code: str
    diagnosis_title: str
    letter_codes: list[str]
    employer_nip: str | None
    backdating_reason: str | None
    cancelled: bool


def package_pdf(p: PackagePrintout) -> bytes:
    """The package's printout: every prescription, a cancelled one marked as such; the whole
    page marked when all of them are cancelled."""
    if not p.prescriptions:
        raise ValueError("a package printout needs at least one prescription")
    issued_on = clinic_day(_aware(p.issued_at))
    story: list[Flowable] = [
        *_heading("Informational printout of an e-prescription", p.parties, p.issued_at),
        _key_block(p.key, p.access_code, "Prescription access code"),
        Spacer(1, 6 * mm),
    ]
    for number, prescription in enumerate(p.prescriptions, start=1):
        story.append(_prescription(number, prescription, issued_on))
    everything_cancelled = all(rx.cancelled for rx in p.prescriptions)
    return _render(
        "Informational printout of an e-prescription", p.parties, story, everything_cancelled
    )


def referral_pdf(r: ReferralPrintout) -> bytes:
    title = "Informational printout of an e-referral"
    rows = [
        ("Referral to", _KINDS[ReferralKind(r.kind)]),
        ("Specialty or test", r.target),
        ("Diagnosis (ICD-10)", f"{r.diagnosis_code} {r.diagnosis_title}"),
        ("Priority", _PRIORITIES[Priority(r.priority)]),
        ("Clinical reason", r.reason or "-"),
    ]
    story: list[Flowable] = [
        *_heading(title, r.parties, r.issued_at),
        _key_block(r.key, r.access_code, "Referral access code"),
        Spacer(1, 6 * mm),
        _rows(rows),
    ]
    return _render(title, r.parties, story, r.cancelled)


def sick_leave_pdf(s: SickLeavePrintout) -> bytes:
    title = "Informational printout of a sick leave certificate (e-ZLA)"
    days = (s.end - s.start).days + 1
    rows = [
        ("Period", f"{s.start.isoformat()} to {s.end.isoformat()} ({days} days)"),
        ("Recommendation", _RECOMMENDATIONS[Recommendation(s.recommendation)]),
        ("Diagnosis (ICD-10)", f"{s.diagnosis_code} {s.diagnosis_title}"),
        ("Letter codes", ", ".join(s.letter_codes) or "none"),
        ("Employer's NIP", s.employer_nip or "not given"),
    ]
    if s.backdating_reason:
        rows.append(("Why it starts before the day of issue", s.backdating_reason))
    story: list[Flowable] = [*_heading(title, s.parties, s.issued_at), _rows(rows)]
    return _render(title, s.parties, story, s.cancelled)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        # A naive time would be read on the server's own clock, which may not be Warsaw's.
        raise ValueError("issued_at must be timezone-aware")
    return at


def _heading(title: str, parties: Parties, issued_at: datetime) -> list[Flowable]:
    issued = clinic_time(_aware(issued_at)).strftime("%Y-%m-%d %H:%M")
    rows = [
        ("Clinic", parties.clinic_name),
        ("Patient", parties.patient_name),
        ("PESEL", parties.pesel or "none"),
        ("Doctor", parties.doctor_name),
        ("Licence no.", parties.licence_number),
        ("Issued", f"{issued} ({CLINIC_ZONE_NAME})"),
    ]
    title_line = Paragraph(escape(title), _styles()["title"])
    return [title_line, Spacer(1, 4 * mm), _rows(rows), Spacer(1, 6 * mm)]


def _rows(rows: list[tuple[str, str]]) -> Table:
    """Label and value, one pair a row; a long value wraps in its column."""
    styles = _styles()
    table = Table(
        [
            [Paragraph(escape(k), styles["label"]), Paragraph(escape(v), styles["body"])]
            for k, v in rows
        ],
        colWidths=[LABEL_WIDTH, WIDTH - LABEL_WIDTH],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _key_block(key: str, access_code: str, code_label: str) -> Table:
    """The key as a barcode with its digits under it, and the access code beside them."""
    if not (is_key(key) and is_access_code(access_code)):
        # Code 128 would draw any text: a wrong value would print a barcode that reads wrong.
        raise ValueError(f"a key has {KEY_DIGITS} digits and an access code {CODE_DIGITS}")
    styles = _styles()
    barcode = Code128(key, barWidth=0.33 * mm, barHeight=14 * mm, humanReadable=False)
    left = [barcode, Paragraph(f"Key: {escape(key)}", styles["key"])]
    right = [
        Paragraph(escape(code_label), styles["label"]),
        Paragraph(escape(access_code), styles["code"]),
    ]
    table = Table([[left, right]], colWidths=[120 * mm, WIDTH - 120 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOX", (1, 0), (1, 0), 0.75, colors.black),
                ("LEFTPADDING", (1, 0), (1, 0), 4 * mm),
            ]
        )
    )
    return table


def _prescription(number: int, rx: PrintedPrescription, issued_on: date) -> KeepTogether:
    styles = _styles()
    name = escape(f"{number}. {rx.product_name} {rx.strength}, {rx.form}")
    if rx.cancelled:
        name += f' <font color="{_RED.hexval()}">- {CANCELLED}</font>'
    rows = [
        ("Pack size x packs", f"{rx.pack_size} x {rx.packs}"),
        ("Dosage", rx.dosage_instruction),
        ("Payment level", rx.payment_level),
        ("To be dispensed from", (rx.dispense_from or issued_on).isoformat()),
        ("Valid until", rx.valid_until.isoformat()),
    ]
    return KeepTogether([Paragraph(name, styles["item"]), _rows(rows), Spacer(1, 4 * mm)])


def _render(title: str, parties: Parties, story: list[Flowable], cancelled: bool) -> bytes:
    _fonts()
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author=parties.clinic_name,
        subject=title,
        creator="consult",
        lang="en",
        invariant=True,
    )

    def page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(REGULAR, 8)
        canvas.setFillColor(_GREY)
        # A loose page still says whose it is.
        footer = (
            f"{parties.patient_name}: informational printout, not the document itself. "
            f"Page {doc.page}."
        )
        canvas.drawString(MARGIN, MARGIN / 2, footer)
        if cancelled:
            _cancelled_mark(canvas)
        canvas.restoreState()

    with _BUILDING:
        document.build(story, onFirstPage=page, onLaterPages=page)
    return out.getvalue()


def _cancelled_mark(canvas: Any) -> None:
    width, height = A4
    canvas.setFillColor(_RED)
    canvas.setFillAlpha(0.35)
    canvas.setFont(BOLD, 80)
    canvas.translate(width / 2, height / 2)
    canvas.rotate(35)
    canvas.drawCentredString(0, -25, CANCELLED)


@cache
def _fonts() -> None:
    with _BUILDING:
        _register_fonts()


def _register_fonts() -> None:
    for name, file in ((REGULAR, "NotoSans-Regular.ttf"), (BOLD, "NotoSans-Bold.ttf")):
        data = resources.files("consult.outcome").joinpath(f"data/{file}").read_bytes()
        pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
    # Paragraphs look a font's bold and italic up by its family.
    pdfmetrics.registerFontFamily(
        REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR, boldItalic=BOLD
    )


@cache
def _styles() -> dict[str, ParagraphStyle]:
    _fonts()  # paragraphs measure their text as they are made
    return {
        "title": ParagraphStyle("title", fontName=BOLD, fontSize=15, leading=19),
        "label": ParagraphStyle("label", fontName=REGULAR, fontSize=9, leading=12, textColor=_GREY),
        "body": ParagraphStyle("body", fontName=REGULAR, fontSize=10, leading=13),
        "item": ParagraphStyle("item", fontName=BOLD, fontSize=11, leading=15, spaceAfter=1 * mm),
        "key": ParagraphStyle(
            "key", fontName=REGULAR, fontSize=9.5, leading=13, spaceBefore=1 * mm
        ),
        "code": ParagraphStyle("code", fontName=BOLD, fontSize=30, leading=36),
    }
