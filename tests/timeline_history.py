"""A long history of one patient's, stored straight into the database: every kind of thing
the timeline lists, for each consultation, with many equal timestamps (the timeline tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import tables as t

# Every kind the timeline lists; ``seed_history`` stores one of each per consultation (a
# booking too), so a consultation stands for this many items (a doctor sees all but ratings).
KINDS_PER_CONSULTATION = 11


async def seed_history(
    database_url: str, patient: int, doctors: tuple[int, int], count: int, newest: datetime
) -> list[int]:
    """``count`` ended consultations of ``patient`` with ``doctors[0]``, the i-th at ``newest``
    minus i // 2 hours (two at each moment), each with a booked visit at that moment (with each
    doctor in turn: one doctor has one slot a moment), a document shared into it, a call
    recording, a recommendation, a package of one prescription, a referral, sick leave, a
    follow-up question with its answer, a declined renewal request and a rating, all at the
    consultation's moment. Returns the consultations' ids, newest first."""
    doctor = doctors[0]
    engine = create_async_engine(database_url)
    tag = newest.strftime("%Y%m%d%H%M%S%f")  # stored names and keys unique across calls
    try:
        async with engine.begin() as conn:

            async def insert(table: sa.Table, values: list[dict[str, Any]]) -> list[int]:
                found = await conn.execute(sa.insert(table).returning(table.c.id), values)
                return list(found.scalars())

            moments = [newest - timedelta(hours=i // 2) for i in range(count)]
            who = {"patient_id": patient, "doctor_id": doctor}
            ids = await insert(
                t.consultations,
                [
                    {
                        **who,
                        "specialty_code": "internal-medicine",
                        "form": "chat",
                        "status": "ended",
                        "created_at": at,
                        "started_at": at,
                        "ended_at": at + timedelta(minutes=10),
                        "last_seq": 1,
                    }
                    for at in moments
                ],
            )
            pairs = list(zip(ids, moments, strict=True))
            await conn.execute(
                t.consultation_doctors.insert(),
                [{"consultation_id": c, "doctor_id": doctor, "accepted_at": at} for c, at in pairs],
            )
            documents = await insert(
                t.documents,
                [
                    {
                        "patient_id": patient,
                        "stored_name": f"{tag}-{n}",
                        "filename": f"scan-{n}.pdf",
                        "description": "a scan",
                        "content_type": "application/pdf",
                        "size": 1000,
                        "sha256": "0" * 64,
                        "created_at": at,
                    }
                    for n, (_, at) in enumerate(pairs)
                ],
            )
            await conn.execute(
                t.messages.insert(),
                [
                    {
                        "consultation_id": c,
                        "seq": 1,
                        "sender_id": patient,
                        "client_id": "shared",
                        "body": "",
                        "created_at": at,
                        "document_id": d,
                    }
                    for (c, at), d in zip(pairs, documents, strict=True)
                ],
            )
            await conn.execute(
                t.recordings.insert(),
                [
                    {
                        "consultation_id": c,
                        "stored_name": f"{tag}-r{c}",
                        "status": "ready",
                        "started_at": at,
                        "ended_at": at + timedelta(minutes=5),
                        "size": 1000,
                        "sha256": "0" * 64,
                    }
                    for c, at in pairs
                ],
            )
            await conn.execute(
                t.recommendations.insert(),
                [
                    {"consultation_id": c, "text": "rest", "created_at": at, **who}
                    for c, at in pairs
                ],
            )
            await conn.execute(
                t.follow_ups.insert(),
                [
                    {
                        "consultation_id": c,
                        "question": "better?",
                        "asked_at": at,
                        "answer": "yes",
                        "answered_at": at + timedelta(minutes=1),
                        **who,
                    }
                    for c, at in pairs
                ],
            )
            outcomes = await insert(
                t.outcomes,
                [
                    {
                        "consultation_id": c,
                        "idempotency_key": f"{tag}-{c}",
                        "request_hash": "0" * 64,
                        "issued_at": at,
                        **who,
                    }
                    for c, at in pairs
                ],
            )
            issued = [
                {"consultation_id": c, "outcome_id": o, "issued_at": at, **who}
                for (c, at), o in zip(pairs, outcomes, strict=True)
            ]
            packages = await insert(
                t.prescription_packages,
                [
                    {**i, "key": f"{tag}{n:024d}", "access_code": "1234"}
                    for n, i in enumerate(issued)
                ],
            )
            prescriptions = await insert(
                t.prescriptions,
                [
                    {
                        **who,
                        "package_id": k,
                        "position": 1,
                        "product_id": 241,
                        "product_name": "Acard",
                        "substance": "kwas acetylosalicylowy",
                        "strength": "75 mg",
                        "form": "tabletki",
                        "category": "standard",
                        "long_term_eligible": True,
                        "pack_size": 60,
                        "packs": 1,
                        "dosage_instruction": "1 daily",
                        "payment_level": "100%",
                        "issued_on": at.date(),
                        "validity_days": 30,
                        "valid_until": at.date() + timedelta(days=29),
                    }
                    for k, (_, at) in zip(packages, pairs, strict=True)
                ],
            )
            await conn.execute(
                t.referrals.insert(),
                [
                    {
                        **i,
                        "key": f"{tag}{n:024d}",
                        "access_code": "4321",
                        "position": 1,
                        "kind": "specialist_consultation",
                        "target": "cardiology",
                        "diagnosis_code": "I10",
                        "diagnosis_title": "Essential (primary) hypertension",
                        "reason": "",
                        "priority": "routine",
                    }
                    for n, i in enumerate(issued)
                ],
            )
            await conn.execute(
                t.sick_leaves.insert(),
                [
                    {
                        **i,
                        "start": i["issued_at"].date(),
                        "end": i["issued_at"].date() + timedelta(days=2),
                        "recommendation": 1,
                        "diagnosis_code": "J06.9",
                        "diagnosis_title": "Acute upper respiratory infection, unspecified",
                        "letter_codes": [],
                    }
                    for i in issued
                ],
            )
            await conn.execute(
                t.renewal_requests.insert(),
                [
                    {
                        **who,
                        "prescription_id": p,
                        "status": "declined",
                        "note": "",
                        "requested_at": at,
                        "decided_at": at + timedelta(minutes=1),
                        "decided_by": doctor,
                        "decline_reason": "come in first",
                    }
                    for p, (_, at) in zip(prescriptions, pairs, strict=True)
                ],
            )
            await conn.execute(
                t.ratings.insert(),
                [
                    {
                        **who,
                        "kind": "consultation",
                        "consultation_id": c,
                        "specialty_code": "internal-medicine",
                        "score": 4,
                        "comment": "",
                        "rated_at": at,
                    }
                    for c, at in pairs
                ],
            )
            slots = await insert(
                t.slots,
                [
                    {
                        "doctor_id": doctors[n % 2],
                        "specialty_code": "internal-medicine",
                        "kind": "stationary",
                        "starts_at": at,
                        "ends_at": at + timedelta(minutes=20),
                        "created_at": at,
                    }
                    for n, at in enumerate(moments)
                ],
            )
            await conn.execute(
                t.bookings.insert(),
                [
                    {"slot_id": s, "patient_id": patient, "status": "active", "created_at": at}
                    for s, at in zip(slots, moments, strict=True)
                ],
            )
    finally:
        await engine.dispose()
    return ids
