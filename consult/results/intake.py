"""A laboratory's or imaging system's bundle read into a Submission, or refused with the
issues that say why (issues.py). Pure: no I/O; CPU-bound (the service runs it in a thread).

The bundle is a FHIR R4 Bundle of type ``transaction`` or ``collection`` holding exactly one
DiagnosticReport, the Observations its ``result`` lists, and, optionally, the Patient it is
about and anything else (an Organization, a Specimen: read for names, not stored). First the
body must be FHIR: JSON, every resource a known type, the whole validated with fhir.resources'
R4B models (400 ``invalid_bundle``, each issue at its element). Then consult's rules (422
``invalid_report``): an identifier from the sending system, the patient's PESEL, a date, the
Observations' codes and values, a PDF as data. docs/protocol.md, "Laboratory and imaging
results", says each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from consult.errors import Invalid
from consult.outcome.pesel import PESEL_SYSTEM, parse_pesel
from consult.results.drafts import Coded, ReportDraft, Submission
from consult.results.issues import BundleRefused, Issue, Issues, expression, refused
from consult.results.observations import observation
from consult.results.texts import coded, instant, text

BUNDLE_TYPES: Final = ("transaction", "collection")
REPORT_STATUSES: Final = (
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
)
MAX_OBSERVATIONS: Final = 200
MAX_CONCLUSION: Final = 20_000
PDF: Final = "application/pdf"
REPORT, OTHER = "report", "other"  # an Observation's entry: its position in the report


def read(raw: bytes, loads: Callable[[bytes], Any]) -> Submission:
    """The submission the body delivers, or ``BundleRefused`` (400 or 422) naming every
    problem found at the step that failed. ``loads`` parses JSON as the edge takes it (its
    limits on nesting and numbers), raising ValueError for what it refuses."""
    bundle = _validated(_parsed(raw, loads))
    return _submission(bundle)


# --- is it FHIR? (400 invalid_bundle) -----------------------------------------------------------


def _parsed(raw: bytes, loads: Callable[[bytes], Any]) -> dict[str, Any]:
    try:
        data = loads(raw)
    except ValueError as exc:  # UnicodeDecodeError and the edge's refusals are ValueErrors
        raise refused(
            400, "structure", f"the body is not JSON: {exc}", code="invalid_bundle"
        ) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise refused(
            400,
            "structure",
            "the body must be a FHIR Bundle (resourceType Bundle)",
            "Bundle.resourceType",
            code="invalid_bundle",
        )
    found = Issues(400, code="invalid_bundle")
    _no_nul(data, "Bundle", found)
    entries = data.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and not _known(resource.get("resourceType")):
            found.add(
                "structure",
                f"{resource.get('resourceType')!r} is not a FHIR R4 resource type",
                f"Bundle.entry[{i}].resource.resourceType",
            )
    found.check()
    return data


def _known(kind: object) -> bool:
    if not isinstance(kind, str) or not kind.isascii() or not kind.isalpha():
        return False
    try:
        return issubclass(get_fhir_model_class(kind), Resource)
    except (ValueError, KeyError):
        return False


def _no_nul(value: Any, at: str, found: Issues) -> None:
    """A string holding U+0000 anywhere (PostgreSQL cannot store it) is refused where it is."""
    stack = [(value, at)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
        elif isinstance(node, str) and "\x00" in node:
            found.add("value", "a string must not contain the NUL character (U+0000)", where)


def _validated(data: dict[str, Any]) -> Bundle:
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        issues = [
            Issue(
                code="invalid_bundle",
                kind=_issue_kind(e["type"]),
                message=e["msg"],
                expression=expression(e["loc"]),
            )
            for e in exc.errors(include_url=False)
        ]
        raise BundleRefused(400, issues) from None


def _issue_kind(error_type: str) -> str:
    if error_type.endswith("missing"):
        return "required"
    return "structure" if error_type == "extra_forbidden" else "value"


# --- consult's rules (422 invalid_report) --------------------------------------------------------


class _Entries:
    """The bundle's entries, found by what references name them: the fullUrl, or
    ``Type/id``."""

    def __init__(self, bundle: Bundle) -> None:
        self.items: list[Any] = [e.resource for e in bundle.entry or []]
        self.by_name: dict[str, int] = {}
        for i, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource is None:
                continue
            if entry.fullUrl:
                self.by_name[entry.fullUrl] = i
            if resource.id:
                self.by_name[f"{resource.get_resource_type()}/{resource.id}"] = i

    def of_type(self, kind: str) -> list[int]:
        return [i for i, r in enumerate(self.items) if r and r.get_resource_type() == kind]

    def find(self, reference: str | None, kind: str) -> int | None:
        """The entry a reference names, if it is in the bundle and of that type."""
        i = self.by_name.get(reference or "")
        if i is None or self.items[i].get_resource_type() != kind:
            return None
        return i


def _submission(bundle: Bundle) -> Submission:
    found = Issues(422, code="invalid_report")
    if bundle.type not in BUNDLE_TYPES:
        found.add("value", f"the bundle's type must be {' or '.join(BUNDLE_TYPES)}", "Bundle.type")
    entries = _Entries(bundle)
    reports = entries.of_type("DiagnosticReport")
    if len(reports) != 1:
        found.add(
            "invariant",
            f"the bundle must hold exactly one DiagnosticReport (it holds {len(reports)})",
            "Bundle.entry",
        )
    found.check()
    (index,) = reports
    at = f"Bundle.entry[{index}].resource"
    pesel, pesel_at = _pesel(entries.items[index], entries, at, found)
    listed = _results(entries.items[index], entries, at, found)
    draft, pdf_at = _report(entries, index, listed, found)
    found.check()
    kinds: dict[int, str | int] = {index: REPORT}
    kinds |= {i: position for position, i in enumerate(listed)}
    return Submission(
        report=draft,
        pesel=pesel,
        pesel_at=pesel_at,
        pdf_at=pdf_at,
        entries=tuple(kinds.get(i, OTHER) for i in range(len(entries.items))),
    )


def _report(
    entries: _Entries, index: int, listed: list[int], found: Issues
) -> tuple[ReportDraft, str | None]:
    report = entries.items[index]
    at = f"Bundle.entry[{index}].resource"
    period = report.effectivePeriod
    effective = instant(report.effectiveDateTime) or instant(period.start if period else None)
    effective = effective or instant(report.issued)
    if effective is None:
        found.add("required", "the report needs effectiveDateTime, effectivePeriod or issued", at)
    system, value = _identifier(report, at, found)
    pdf, pdf_at = _pdf(report, at, found)
    category = report.category[0] if report.category else None
    draft = ReportDraft(
        identifier_system=system,
        identifier_value=value,
        status=_status(report.status, f"{at}.status", found),
        code=coded(report.code, f"{at}.code", found, need_code=False) or _UNNAMED,
        effective_at=effective or _NEVER,
        category=coded(category, f"{at}.category[0]", found, need_code=False),
        issued_at=instant(report.issued),
        performer=_performer(report, entries, at, found),
        conclusion=text(report.conclusion, MAX_CONCLUSION, f"{at}.conclusion", found),
        observations=tuple(
            o
            for i in listed
            if (o := observation(entries.items[i], f"Bundle.entry[{i}].resource", found))
        ),
        pdf=pdf,
    )
    if not (draft.observations or draft.conclusion or pdf is not None):
        found.add("required", "the report holds nothing: no result, conclusion or PDF", at)
    return draft, pdf_at


# Stand-ins while a refused report is still being read (never stored: found.check() refuses).
_UNNAMED = Coded(None, None, "?")
_NEVER = datetime.min.replace(tzinfo=UTC)


def _status(status: str | None, at: str, found: Issues) -> str:
    if status not in REPORT_STATUSES:
        found.add("value", f"status must be one of {', '.join(REPORT_STATUSES)}", at)
        return "unknown"
    return status


def _identifier(report: Any, at: str, found: Issues) -> tuple[str, str]:
    """The sending system's identifier of the report: the first with a system and a value. A
    resend under it changes nothing; a correction replaces what it names."""
    for i, ident in enumerate(report.identifier or []):
        if ident.system and ident.value:
            system = text(ident.system, 200, f"{at}.identifier[{i}].system", found)
            value = text(ident.value, 200, f"{at}.identifier[{i}].value", found)
            return system or "", value or ""
    found.add(
        "required",
        "the report needs an identifier with a system and a value (the sending system's id of "
        "the report: a resend under it is not stored twice)",
        f"{at}.identifier",
    )
    return "", ""


def _pesel(report: Any, entries: _Entries, at: str, found: Issues) -> tuple[str, str]:
    """The PESEL of the patient the report is about: in ``subject.identifier``, or in the
    identifiers of the Patient entry ``subject.reference`` names."""
    subject = report.subject
    where = f"{at}.subject"
    if subject is None:
        found.add("required", "the report needs a subject: the patient, by PESEL", where)
        return "", where
    pesel: str | None = None
    if subject.identifier is not None and subject.identifier.system == PESEL_SYSTEM:
        pesel, where = subject.identifier.value, f"{where}.identifier.value"
    elif subject.reference:
        i = entries.find(subject.reference, "Patient")
        if i is None:
            found.add("not-found", "subject.reference names no Patient in the bundle", where)
            return "", where
        patient = entries.items[i]
        for k, ident in enumerate(patient.identifier or []):
            if ident.system == PESEL_SYSTEM:
                pesel, where = ident.value, f"Bundle.entry[{i}].resource.identifier[{k}].value"
                break
    if not pesel:
        found.add(
            "required",
            f"the patient is named by their PESEL: an identifier of system {PESEL_SYSTEM}, in "
            "subject.identifier or in the Patient that subject.reference names",
            where,
        )
        return "", where
    try:
        parse_pesel(pesel)
    except Invalid as exc:
        found.add("value", f"the PESEL is not valid: {exc.message}", where)
    return pesel, where


def _results(report: Any, entries: _Entries, at: str, found: Issues) -> list[int]:
    """The entries of the Observations the report lists, in its order. An Observation in the
    bundle that the report does not list is refused rather than dropped unseen."""
    listed: list[int] = []
    for k, ref in enumerate(report.result or []):
        i = entries.find(ref.reference, "Observation")
        if i is None:
            found.add("not-found", "names no Observation in the bundle", f"{at}.result[{k}]")
        elif i not in listed:
            listed.append(i)
    for i in entries.of_type("Observation"):
        if i not in listed:
            found.add(
                "invariant",
                "an Observation the report does not list in result",
                f"Bundle.entry[{i}].resource",
            )
    if len(listed) > MAX_OBSERVATIONS:
        found.add("too-costly", f"at most {MAX_OBSERVATIONS} results in one report", at)
    return listed


def _performer(report: Any, entries: _Entries, at: str, found: Issues) -> str | None:
    """Who made the report, by name: the first performer's display, or the name of the
    Organization or Practitioner in the bundle it refers to."""
    for ref in report.performer or []:
        name = ref.display
        for kind in ("Organization", "Practitioner"):
            i = entries.find(ref.reference, kind)
            if name is None and i is not None:
                found_name = entries.items[i].name
                name = found_name if isinstance(found_name, str) else _person(found_name)
        if name:
            return text(name, 300, f"{at}.performer", found)
    return None


def _person(names: Any) -> str | None:
    if not names:
        return None
    first = names[0]
    return first.text or " ".join([*(first.given or []), first.family or ""]).strip() or None


def _pdf(report: Any, at: str, found: Issues) -> tuple[bytes | None, str | None]:
    """The report as one PDF, sent as data (a URL is not fetched)."""
    forms = report.presentedForm or []
    if len(forms) > 1:
        found.add("not-supported", "send at most one presentedForm (the report's PDF)", at)
    if not forms:
        return None, None
    form, where = forms[0], f"{at}.presentedForm[0]"
    if form.contentType != PDF:
        found.add("not-supported", f"presentedForm must be {PDF}", f"{where}.contentType")
    if not form.data:
        found.add(
            "required", "presentedForm must carry the PDF as data (a url is not fetched)", where
        )
        return None, None
    return form.data, f"{where}.data"
