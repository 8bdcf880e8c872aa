"""A patient's record (facts.py) as FHIR R4 resources, as JSON dicts: the patient, the
doctors, the consultations, what was said and the files; what was issued is in
outcome_mapping.py. Pure, no I/O. The choices (which resource holds what, and the code
systems) are listed in docs/protocol.md, "FHIR R4 export"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from consult.domain import ConsultationStatus, Form
from consult.errors import Invalid
from consult.fhir import codes as c
from consult.fhir.facts import DoctorFacts, PatientFacts, Recommendation, SharedDocument, Visit
from consult.fhir.outcome_mapping import encounter_of
from consult.outcome.pesel import parse_pesel
from consult.schemas import FollowUpOut, RecordingOut

# The forms of a consultation: the v3 ParticipationMode code, its display, and a name.
FORMS: Final = {
    Form.CHAT: ("ONLINEWRIT", "online written", "Chat"),
    Form.VOICE: ("PHONE", "telephone", "Voice call"),
    Form.VIDEO: ("VIDEOCONF", "videoconferencing", "Video call"),
}
ENCOUNTER_STATUS: Final = {
    ConsultationStatus.WAITING: "arrived",  # in the queue: here, not yet seen
    ConsultationStatus.OFFERED: "arrived",
    ConsultationStatus.ACTIVE: "in-progress",
    ConsultationStatus.ENDED: "finished",
    ConsultationStatus.CANCELLED: "cancelled",  # not in the record, so never exported
}
_PRIMARY = c.concept(c.PARTICIPATION_TYPE, "PPRF", "primary performer")
_EARLIER = c.concept(c.PARTICIPATION_TYPE, "PART", "Participation")


# --- people and places ------------------------------------------------------------------------


def patient(facts: PatientFacts) -> c.Resource:
    """The PESEL as the identifier; sex and date of birth as the PESEL encodes them."""
    born: str | None = None
    sex: str | None = None
    if facts.pesel:
        try:
            parsed = parse_pesel(facts.pesel)
            born, sex = parsed.born.isoformat(), parsed.sex
        except Invalid:
            pass  # kept as the identifier it is, without what it cannot tell
    identifier = {"use": "official", "system": c.PESEL_SYSTEM, "value": facts.pesel}
    return c.resource(
        "Patient",
        facts.id,
        {
            "identifier": [identifier] if facts.pesel else [],
            "name": [{"text": facts.name}],
            "gender": sex,
            "birthDate": born,
        },
    )


def practitioner(facts: DoctorFacts) -> c.Resource:
    identifier = {"use": "official", "system": c.NPWZ_SYSTEM, "value": facts.licence_number}
    return c.resource(
        "Practitioner",
        facts.id,
        {
            "identifier": [identifier] if facts.licence_number else [],
            "name": [{"text": facts.name}],
        },
    )


def location(form: Form) -> c.Resource:
    """A form of consultation as a kind of place (mode ``kind``): each stretch of an Encounter
    in that form is an Encounter.location with its period."""
    return c.resource(
        "Location",
        form.value,
        {
            "status": "active",
            "mode": "kind",
            "name": FORMS[form][2],
            "description": f"A consultation held online, in the {form.value} form",
            "physicalType": c.text("virtual"),
        },
    )


# --- the consultation -------------------------------------------------------------------------


def _stretch_status(started: datetime | None, ended: datetime | None) -> str:
    if ended is not None:
        return "completed"
    return "active" if started is not None else "planned"


def encounter(visit: Visit, patient_id: int) -> c.Resource:
    """The consultation: virtual, its period, the doctors who took it (the last one as the
    primary performer), the forms used as ``type`` and, with their periods, as ``location``."""
    con = visit.consultation
    # The doctor consulting now, or last: an offered ticket names a doctor who has not taken it.
    accepted = con.status in (ConsultationStatus.ACTIVE, ConsultationStatus.ENDED)
    last_doctor = con.doctor.id if con.doctor is not None and accepted else None
    participants = [
        {
            "type": [_PRIMARY if p.doctor_id == last_doctor else _EARLIER],
            "period": {"start": c.instant(p.accepted_at)},
            "individual": c.reference("Practitioner", p.doctor_id),
        }
        for p in visit.participants
    ]
    stretches = [
        {
            "location": c.reference("Location", s.form.value),
            "status": _stretch_status(s.started_at, s.ended_at),
            "period": {"start": c.instant(s.started_at), "end": c.instant(s.ended_at)},
        }
        for s in visit.forms
    ]
    forms = dict.fromkeys(stretch.form for stretch in visit.forms)
    start = con.started_at or con.created_at  # not taken yet: since the patient joined the queue
    return c.resource(
        "Encounter",
        con.id,
        {
            "status": ENCOUNTER_STATUS[con.status],
            "class": c.coding(c.ACT_CODE, "VR", "virtual"),
            "type": [c.concept(c.PARTICIPATION_MODE, *FORMS[f][:2], f.value) for f in forms],
            "serviceType": c.text(con.specialty.name),
            "subject": c.reference("Patient", patient_id),
            "participant": participants,
            "period": {"start": c.instant(start), "end": c.instant(con.ended_at)},
            "location": stretches,
        },
    )


# --- what was said ----------------------------------------------------------------------------


def _message(
    key: str,
    said: str,
    sent: datetime | None,
    sender: dict[str, str],
    recipient: dict[str, str],
    extra: dict[str, Any],
) -> c.Resource:
    return c.resource(
        "Communication",
        key,
        {
            "status": "completed",
            "sent": c.instant(sent),
            "sender": sender,
            "recipient": [recipient],
            "payload": [{"contentString": said}],
            **extra,
        },
    )


def recommendation(item: Recommendation, patient_id: int, encounters: set[int]) -> c.Resource:
    instruction = c.concept(c.COMMUNICATION_CATEGORY, "instruction", "Instruction")
    return _message(
        f"recommendation-{item.id}",
        item.text,
        item.created_at,
        c.reference("Practitioner", item.doctor_id),
        c.reference("Patient", patient_id),
        {
            "category": [{**instruction, "text": "recommendation"}],
            "subject": c.reference("Patient", patient_id),
            "encounter": encounter_of(item.consultation_id, encounters),
        },
    )


def follow_up(item: FollowUpOut, encounters: set[int]) -> list[c.Resource]:
    """The patient's question, and the doctor's answer in response to it, once given."""
    patient_ref = c.reference("Patient", item.patient.id)
    doctor_ref = c.reference("Practitioner", item.doctor.id)
    about = {
        "category": [c.text("follow-up question")],
        "subject": patient_ref,
        "encounter": encounter_of(item.consultation_id, encounters),
    }
    question = _message(
        f"question-{item.id}", item.question, item.asked_at, patient_ref, doctor_ref, about
    )
    if item.answer is None:
        return [question]
    answer = _message(
        f"answer-{item.id}",
        item.answer,
        item.answered_at,
        doctor_ref,
        patient_ref,
        {**about, "inResponseTo": [c.reference("Communication", f"question-{item.id}")]},
    )
    return [question, answer]


# --- files ------------------------------------------------------------------------------------


def _encounters(ids: Iterable[int], encounters: set[int]) -> list[dict[str, str]]:
    return [c.reference("Encounter", cid) for cid in ids if cid in encounters]


def document(shared: SharedDocument, origin: str, encounters: set[int]) -> c.Resource:
    """An uploaded document by URL (its download route), never inlined. R4's Attachment.hash
    is SHA-1; consult keeps SHA-256, so there is no hash."""
    d = shared.document
    attachment = {
        "contentType": d.content_type,
        "url": origin + d.url,
        "size": d.size,
        "title": d.filename,
        "creation": c.instant(d.created_at),
    }
    return c.resource(
        "DocumentReference",
        f"document-{d.id}",
        {
            "status": "current",
            "type": c.text("document uploaded by the patient"),
            "subject": c.reference("Patient", d.patient_id),
            "date": c.instant(d.created_at),
            "author": [c.reference("Patient", d.patient_id)],
            "description": d.description,
            "content": [{"attachment": attachment}],
            "context": {"encounter": _encounters(shared.consultation_ids, encounters)},
        },
    )


def recording(item: RecordingOut, patient_id: int, origin: str, encounters: set[int]) -> c.Resource:
    """A call recording (ready to play) by URL, with the consultation and its period."""
    attachment = {
        "contentType": "video/webm",
        "url": origin + item.url,
        "size": item.size,
        "title": f"Call recording {item.id}",
        "creation": c.instant(item.started_at),
    }
    return c.resource(
        "DocumentReference",
        f"recording-{item.id}",
        {
            "status": "current",
            "type": c.text("call recording"),
            "subject": c.reference("Patient", patient_id),
            "date": c.instant(item.ended_at or item.started_at),
            "content": [{"attachment": attachment}],
            "context": {
                "encounter": _encounters((item.consultation_id,), encounters),
                "period": {"start": c.instant(item.started_at), "end": c.instant(item.ended_at)},
            },
        },
    )
