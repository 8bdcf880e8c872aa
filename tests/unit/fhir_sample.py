"""A record of the demo patient Anna Kowalska, as consult/fhir/reading.py would read it: the
input of the mapping's unit tests and of the golden bundle (tests/unit/golden/).

One finished consultation (chat, then video) taken over by Dr House from Dr Grey, with a
recommendation, an answered follow-up question, a ready call recording, a document shared into
it, a package of three prescriptions (active long-term, cancelled, expired), a renewal's
package, a referral and backdated sick leave; one consultation still waiting in the queue; and
two results from laboratories: a blood count (the leukocytes flagged high, the haemoglobin
within its range, the CRP given as a bound) and a chest X-ray's report with its PDF.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from consult.documents.schemas import DocumentOut
from consult.domain import ConsultationStatus, Form
from consult.fhir.facts import (
    DoctorFacts,
    Participation,
    PatientFacts,
    Recommendation,
    RecordFacts,
    SharedDocument,
    Visit,
)
from consult.outcome.issued import (
    DiagnosisOut,
    IssuerOut,
    PackageOut,
    PrescriptionOut,
    ReferralOut,
    SickLeaveOut,
)
from consult.outcome.referrals import Priority, ReferralKind
from consult.outcome.validity import Category, State
from consult.results.flags import ValueFlag, ValueFlagSource
from consult.results.schemas import (
    ResultCodeOut,
    ResultIdentifierOut,
    ResultObservationOut,
    ResultOut,
    ResultPdfOut,
)
from consult.schemas import (
    ConsultationOut,
    FollowUpOut,
    FormStretchOut,
    PersonOut,
    RecordingOut,
    SpecialtyOut,
)

ORIGIN = "https://consult.example.org"
NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
ANNA = PersonOut(id=1, name="Anna Kowalska")
HOUSE = IssuerOut(id=4, name="Dr Gregory House", licence_number="3123456")
GREY = IssuerOut(id=5, name="Dr Meredith Grey", licence_number="2234567")
IM = SpecialtyOut(code="internal-medicine", name="Internal medicine")
KEY = "04812345678901234567890123456789012345678901"
RENEWAL_KEY = "17345678901234567890123456789012345678901234"
REFERRAL_KEY = "55512345678901234567890123456789012345678901"
J069 = DiagnosisOut(code="J06.9", title="Acute upper respiratory infection, unspecified")
I10 = DiagnosisOut(code="I10", title="Essential (primary) hypertension")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def _rx(rid: int, package_id: int, state: State, **changes: object) -> PrescriptionOut:
    fields: dict[str, object] = {
        "id": rid,
        "package_id": package_id,
        "product_id": 241,
        "product_name": "Acard",
        "substance": "kwas acetylosalicylowy",
        "strength": "75 mg",
        "form": "tabletki dojelitowe",
        "category": Category.STANDARD,
        "pack_size": 60,
        "packs": 2,
        "dosage_instruction": "1 tablet daily after a meal",
        "payment_level": "100%",
        "issued_on": date(2026, 12, 7),
        "dispense_from": None,
        "validity_days": 180,
        "therapy_days": 120,
        "valid_until": date(2027, 6, 4),
        "status": state,
        "expires_in_days": 166,
        "cancelled_at": None,
        "cancel_reason": None,
        "renewable": True,
        "renewal_status": None,
    }
    fields.update(changes)
    return PrescriptionOut.model_validate(fields)


def _visits() -> list[Visit]:
    ended = ConsultationOut(
        id=7,
        status=ConsultationStatus.ENDED,
        specialty=IM,
        form=Form.CHAT,
        patient=ANNA,
        doctor=PersonOut(id=HOUSE.id, name=HOUSE.name),
        created_at=at(7, 9, 50),
        started_at=at(7, 10, 0),
        ended_at=at(7, 10, 40),
    )
    waiting = ConsultationOut(
        id=9,
        status=ConsultationStatus.WAITING,
        specialty=IM,
        form=Form.VOICE,
        patient=ANNA,
        doctor=None,
        created_at=at(20, 11, 55),
        started_at=None,
        ended_at=None,
    )
    return [
        Visit(waiting, [FormStretchOut(form=Form.VOICE, started_at=None, ended_at=None)], []),
        Visit(
            ended,
            [
                FormStretchOut(form=Form.CHAT, started_at=at(7, 10, 0), ended_at=at(7, 10, 15)),
                FormStretchOut(form=Form.VIDEO, started_at=at(7, 10, 15), ended_at=at(7, 10, 40)),
            ],
            [Participation(GREY.id, at(7, 10, 0)), Participation(HOUSE.id, at(7, 10, 5))],
        ),
    ]


def _packages() -> list[PackageOut]:
    first = PackageOut(
        id=3,
        key=KEY,
        access_code="0427",
        consultation_id=7,
        issued_at=at(7, 10, 38),
        doctor=HOUSE,
        renewal_of=None,
        prescriptions=[
            _rx(5, 3, State.ACTIVE),
            _rx(6, 3, State.CANCELLED, cancelled_at=at(7, 11), cancel_reason="Wrong strength"),
            _rx(
                8,
                3,
                State.EXPIRED,
                product_id=24,
                product_name="Zinnat",
                substance="cefuroksym",
                strength="250 mg",
                form="tabletki powlekane",
                category=Category.ANTIBIOTIC,
                pack_size=10,
                packs=1,
                dosage_instruction="1 tablet every 12 hours for 5 days",
                payment_level="50%",
                validity_days=7,
                therapy_days=None,
                valid_until=date(2026, 12, 14),
                expires_in_days=None,
                renewable=False,
            ),
        ],
    )
    renewal = PackageOut(
        id=4,
        key=RENEWAL_KEY,
        access_code="9911",
        consultation_id=None,
        issued_at=at(9, 8, 0),
        doctor=HOUSE,
        renewal_of=5,
        prescriptions=[_rx(11, 4, State.ACTIVE, issued_on=date(2026, 12, 9), packs=1)],
    )
    return [renewal, first]


def sample_record() -> RecordFacts:
    return RecordFacts(
        patient=PatientFacts(id=ANNA.id, name=ANNA.name, pesel="85031412361"),
        doctors={
            HOUSE.id: DoctorFacts(HOUSE.id, HOUSE.name, HOUSE.licence_number),
            GREY.id: DoctorFacts(GREY.id, GREY.name, GREY.licence_number),
        },
        visits=_visits(),
        recommendations=[
            Recommendation(
                2, 7, HOUSE.id, "Rest, fluids; come back if the fever stays.", at(7, 10, 38)
            )
        ],
        follow_ups=[
            FollowUpOut(
                id=1,
                consultation_id=7,
                patient=ANNA,
                doctor=PersonOut(id=HOUSE.id, name=HOUSE.name),
                question="May I take ibuprofen as well?",
                asked_at=at(8, 9, 0),
                answer="Yes, at most three times a day.",
                answered_at=at(8, 12, 0),
            )
        ],
        recordings=[
            RecordingOut(
                id=2,
                consultation_id=7,
                status="ready",
                started_at=at(7, 10, 16),
                ended_at=at(7, 10, 39),
                size=4_200_000,
                sha256="ab" * 32,
                url="/api/consultations/7/recordings/2",
            )
        ],
        documents=[
            SharedDocument(
                DocumentOut(
                    id=12,
                    patient_id=ANNA.id,
                    filename="blood-pressure.pdf",
                    description="Blood pressure diary, November",
                    content_type="application/pdf",
                    size=48_213,
                    sha256="cd" * 32,
                    created_at=at(6, 20, 0),
                    url="/api/documents/12/content",
                ),
                (7,),
            )
        ],
        packages=_packages(),
        referrals=[
            ReferralOut(
                id=2,
                key=REFERRAL_KEY,
                access_code="9310",
                consultation_id=7,
                issued_at=at(7, 10, 38),
                doctor=HOUSE,
                kind=ReferralKind.SPECIALIST_CONSULTATION,
                target="cardiology",
                diagnosis=I10,
                reason="Blood pressure 165/100 on three readings.",
                priority=Priority.ROUTINE,
                cancelled_at=None,
                cancel_reason=None,
                used_by_booking=None,
            )
        ],
        sick_leaves=[
            SickLeaveOut(
                id=1,
                consultation_id=7,
                issued_at=at(7, 10, 38),
                doctor=HOUSE,
                start=date(2026, 12, 6),
                end=date(2026, 12, 11),
                days=6,
                backdating_reason="Fever since yesterday morning.",
                recommendation=1,
                diagnosis=J069,
                letter_codes=["E"],
                employer_nip=None,
                cancelled_at=None,
                cancel_reason=None,
            )
        ],
        results=_results(),
    )


LOINC = "http://loinc.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _value(
    oid: int, code: str, name: str, value: str, number: float, unit: str, **more: object
) -> ResultObservationOut:
    fields: dict[str, object] = {
        "id": oid,
        "code": ResultCodeOut(system=LOINC, code=code, display=name),
        "status": "final",
        "value_kind": "quantity",
        "value": value,
        "value_number": number,
        "comparator": None,
        "unit": unit,
        "low": None,
        "high": None,
        "range": None,
        "interpretation": None,
        "flag": None,
        "flag_source": None,
        "critical": False,
        "effective_at": at(18, 6, 30),
    }
    return ResultObservationOut.model_validate(fields | more)


def _results() -> list[ResultOut]:
    count = [
        _value(
            5,
            "6690-2",
            "Leukocytes",
            "11.2",
            11.2,
            "10^9/L",
            low=4.0,
            high=10.0,
            range="4.0–10.0",
            interpretation="H",
            flag=ValueFlag.HIGH,
            flag_source=ValueFlagSource.LABORATORY,
        ),
        _value(
            6,
            "718-7",
            "Hemoglobin",
            "13.5",
            13.5,
            "g/dL",
            low=12.0,
            high=16.0,
            range="12.0–16.0",
            flag=ValueFlag.NORMAL,
            flag_source=ValueFlagSource.RANGE,
        ),
        _value(
            7,
            "1988-5",
            "C reactive protein",
            "<0.5",
            0.5,
            "mg/L",
            comparator="<",
            high=5.0,
            range="≤ 5",
        ),
    ]
    blood = ResultOut(
        id=3,
        patient_id=1,
        sender="lab-central",
        identifier=ResultIdentifierOut(system="https://lab.example.org/reports", value="CBC-42"),
        status="final",
        category=ResultCodeOut(system=V2_0074, code="HM", display="Hematology"),
        code=ResultCodeOut(system=LOINC, code="58410-2", display="Complete blood count"),
        effective_at=at(18, 6, 30),
        issued_at=at(18, 10, 2),
        received_at=at(18, 10, 3),
        changed_at=None,
        performer="Laboratorium Example",
        conclusion="Leukocytosis.",
        pdf=None,
        observations=count,
        out_of_range=1,
    )
    x_ray = blood.model_copy(
        update={
            "id": 2,
            "sender": "imaging",
            "identifier": ResultIdentifierOut(
                system="https://rtg.example.org/studies", value="RTG-77"
            ),
            "category": ResultCodeOut(system=V2_0074, code="RAD", display="RAD"),
            "code": ResultCodeOut(system=LOINC, code="36643-5", display="Chest X-ray, 2 views"),
            "effective_at": at(5, 9),
            "issued_at": None,
            "received_at": at(5, 12),
            "performer": None,
            "conclusion": "No focal lesions in the lungs.",
            "pdf": ResultPdfOut(url="/api/results/2/report.pdf", size=48_000),
            "observations": [],
            "out_of_range": 0,
        }
    )
    return [blood, x_ray]
