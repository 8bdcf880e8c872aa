"""(a helper of record_bench.py, not run by itself) One patient's long history, inserted straight
into consult's tables with bulk Core inserts (thousands of HTTP calls would take minutes), so
that the server reads real rows through its real schema.

The history (the defaults, issue 14's figures): 300 ended consultations with 8 doctors over
three years, a quarter of them moved from chat to video (their forms as stretches); 10,000
chat messages (about 33 a consultation); 50 documents of the patient's, each shared into one
consultation by a chat message, as files in the documents folder; a recommendation and an
outcome per consultation; 600 e-prescriptions in 200 packages of 3 (every 25th cancelled,
every 10th long-term); a referral every 5th consultation, sick leave every 10th, a follow-up
question (answered) every 10th; ratings of every 3rd consultation (the consultation and the
service); 20 laboratory results of 4 values each.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from queue_bench import SPECIALTY, insert_users  # bench/queue_bench.py

FILE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Shape:
    consultations: int = 300
    messages: int = 10_000
    prescriptions: int = 600  # in packages of 3
    documents: int = 50
    document_bytes: int = 2 * 1024 * 1024
    doctors: int = 8
    results: int = 20


@dataclass
class Seeded:
    patient_id: int
    token: str
    files: list[Path]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def file_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def _write_file(path: Path, size: int) -> str:
    """A PDF-looking file of random (incompressible) bytes, on the disk (fsynced, so that its
    pages can be dropped from the cache); its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        head = b"%PDF-1.4\n"
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            chunk = os.urandom(min(FILE_CHUNK, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


async def seed(database_url: str, documents_dir: Path, shape: Shape) -> Seeded:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.outcome import keys
    from consult.outcome.licence import make_licence
    from consult.outcome.pesel import make_pesel
    from consult.storage import tables as t

    patients, doctors = await insert_users(database_url, 1, shape.doctors)
    (pid, token), doctor_ids = patients[0], [d for d, _ in doctors]
    documents_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(days=3 * 365)
    step = (now - timedelta(days=2) - first) / shape.consultations
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(table: str, row: dict[str, Any]) -> None:
        rows.setdefault(table, []).append(row)

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:

            async def insert(table: sa.Table, values: list[dict[str, Any]]) -> list[int]:
                """Rows in one statement (executemany), their ids in the order given."""
                if not values:
                    return []
                found = await conn.execute(
                    table.insert().returning(table.c.id, sort_by_parameter_order=True), values
                )
                return list(found.scalars())

            await conn.execute(
                t.users.update()
                .where(t.users.c.id == pid)
                .values(pesel=make_pesel(date(1961, 3, 14), 42, "female"))
            )
            for n, did in enumerate(doctor_ids):
                await conn.execute(
                    t.users.update()
                    .where(t.users.c.id == did)
                    .values(licence_number=make_licence(120_000 + 7 * n))
                )

            # Consultations, oldest first.
            for i in range(shape.consultations):
                at = first + i * step
                video = i % 4 == 3
                add(
                    "consultations",
                    {
                        "patient_id": pid,
                        "doctor_id": doctor_ids[i % len(doctor_ids)],
                        "specialty_code": SPECIALTY,
                        "form": "chat",
                        "status": "ended",
                        "created_at": at,
                        "rank_at": at,
                        "started_at": at + timedelta(minutes=3),
                        "ended_at": at + timedelta(minutes=23),
                        "ended_by": doctor_ids[i % len(doctor_ids)],
                        "priority": 0,
                        "last_seq": 0,
                        "language": "pl" if video else None,
                    },
                )
            cids = await insert(t.consultations, rows["consultations"])
            cons = list(zip(cids, rows["consultations"], strict=True))
            await conn.execute(
                t.consultation_doctors.insert(),
                [
                    {
                        "consultation_id": c,
                        "doctor_id": r["doctor_id"],
                        "accepted_at": r["started_at"],
                    }
                    for c, r in cons
                ],
            )
            for i, (c, r) in enumerate(cons):
                if i % 4 == 3:  # chat, then video for the last 12 minutes
                    middle = r["started_at"] + timedelta(minutes=8)
                    add(
                        "forms",
                        {
                            "consultation_id": c,
                            "form": "chat",
                            "started_at": r["started_at"],
                            "ended_at": middle,
                        },
                    )
                    add(
                        "forms",
                        {
                            "consultation_id": c,
                            "form": "video",
                            "started_at": middle,
                            "ended_at": r["ended_at"],
                            "requested_by": r["doctor_id"],
                        },
                    )
            await insert(t.consultation_forms, rows.get("forms", []))

            # Documents: files first, rows, then the messages that share them.
            files = []
            for j in range(shape.documents):
                c, r = cons[j * len(cons) // shape.documents]
                name = secrets.token_hex(16)
                path = documents_dir / name
                sha = _write_file(path, shape.document_bytes)
                files.append(path)
                add(
                    "documents",
                    {
                        "patient_id": pid,
                        "stored_name": name,
                        "filename": f"scan-{j + 1:02d}.pdf",
                        "description": f"Results brought to consultation {c}",
                        "content_type": "application/pdf",
                        "size": shape.document_bytes,
                        "sha256": sha,
                        "created_at": r["started_at"] - timedelta(minutes=1),
                    },
                )
            doc_ids = await insert(t.documents, rows.get("documents", []))
            shared = {cons[j * len(cons) // shape.documents][0]: d for j, d in enumerate(doc_ids)}

            per, extra = divmod(shape.messages, len(cons))
            for i, (c, r) in enumerate(cons):
                count = per + (1 if i < extra else 0)
                for seq in range(1, count + 1):
                    from_patient = seq % 2 == 1
                    document = shared.get(c) if seq == 1 else None
                    add(
                        "messages",
                        {
                            "consultation_id": c,
                            "seq": seq,
                            "sender_id": pid if from_patient else r["doctor_id"],
                            "client_id": f"bench-{c}-{seq}",
                            "body": (
                                "I am sharing my results."
                                if document
                                else f"Message {seq} of consultation {c}: how the symptoms went "
                                "since the last visit, the medicines taken and the doses."
                            ),
                            "created_at": r["started_at"] + timedelta(seconds=20 * seq),
                            "document_id": document,
                        },
                    )
                r["last_seq"] = count
            await insert(t.messages, rows.get("messages", []))
            await conn.execute(
                t.consultations.update()
                .where(t.consultations.c.id == sa.bindparam("cid"))
                .values(last_seq=sa.bindparam("seq")),
                [{"cid": c, "seq": r["last_seq"]} for c, r in cons],
            )

            # Each consultation's recommendation and outcome.
            for c, r in cons:
                add(
                    "recommendations",
                    {
                        "consultation_id": c,
                        "patient_id": pid,
                        "doctor_id": r["doctor_id"],
                        "text": "Rest, fluids, paracetamol up to 3 g a day; come back if the fever "
                        "stays over 3 days.",
                        "created_at": r["ended_at"] - timedelta(minutes=1),
                    },
                )
            recs = await insert(t.recommendations, rows["recommendations"])
            for (c, r), rec in zip(cons, recs, strict=True):
                add(
                    "outcomes",
                    {
                        "consultation_id": c,
                        "doctor_id": r["doctor_id"],
                        "patient_id": pid,
                        "idempotency_key": str(uuid.uuid4()),
                        "request_hash": "0" * 64,
                        "issued_at": r["ended_at"],
                        "recommendation_id": rec,
                    },
                )
            outs = await insert(t.outcomes, rows["outcomes"])
            issued = [
                {
                    "consultation_id": c,
                    "outcome_id": o,
                    "patient_id": pid,
                    "doctor_id": r["doctor_id"],
                    "issued_at": r["ended_at"],
                }
                for (c, r), o in zip(cons, outs, strict=True)
            ]

            # 600 prescriptions in packages of 3, spread over the consultations.
            packages = shape.prescriptions // 3
            chosen = (
                [issued[k * len(issued) // packages] for k in range(packages)] if packages else []
            )
            kids = await insert(
                t.prescription_packages,
                [
                    {**d, "key": keys.new_key(), "access_code": keys.new_access_code()}
                    for d in chosen
                ],
            )
            for k, (kid, d) in enumerate(zip(kids, chosen, strict=True)):
                day = d["issued_at"].date()
                for n in range(3):
                    long_term = (3 * k + n) % 10 == 0
                    validity = 365 if long_term else 30
                    add(
                        "prescriptions",
                        {
                            "package_id": kid,
                            "patient_id": pid,
                            "doctor_id": d["doctor_id"],
                            "position": n,
                            "product_id": 241 + n,
                            "product_name": ("Amlodipine", "Ramipril", "Atorvastatin")[n],
                            "substance": ("amlodipine", "ramipril", "atorvastatin")[n],
                            "strength": ("5 mg", "10 mg", "20 mg")[n],
                            "form": "tablets",
                            "category": "standard",
                            "long_term_eligible": True,
                            "pack_size": 30 * (1 + long_term),
                            "packs": 1,
                            "dosage_instruction": "1 tablet daily in the morning",
                            "payment_level": "30%",
                            "issued_on": day,
                            "validity_days": validity,
                            "therapy_days": 360 if long_term else None,
                            "valid_until": day + timedelta(days=validity),
                            "cancelled_at": (
                                d["issued_at"] + timedelta(hours=1)
                                if (3 * k + n) % 25 == 24
                                else None
                            ),
                            "cancel_reason": "dose changed" if (3 * k + n) % 25 == 24 else None,
                        },
                    )
            await insert(t.prescriptions, rows.get("prescriptions", []))

            for k, d in enumerate(issued):
                if k % 5 == 0:
                    add(
                        "referrals",
                        {
                            **d,
                            "key": keys.new_key(),
                            "access_code": keys.new_access_code(),
                            "position": 0,
                            "kind": "specialist_consultation",
                            "target": "cardiology",
                            "diagnosis_code": "I10",
                            "diagnosis_title": "Essential (primary) hypertension",
                            "reason": "Blood pressure over 160/100 on treatment.",
                            "priority": "routine",
                        },
                    )
                if k % 10 == 0:
                    start = d["issued_at"].date()
                    add(
                        "sick_leaves",
                        {
                            **d,
                            "start": start,
                            "end": start + timedelta(days=4),
                            "recommendation": 2,
                            "diagnosis_code": "J06.9",
                            "diagnosis_title": "Acute upper respiratory infection, unspecified",
                            "letter_codes": [],
                        },
                    )
            await insert(t.referrals, rows.get("referrals", []))
            await insert(t.sick_leaves, rows.get("sick_leaves", []))

            for i, (c, r) in enumerate(cons):
                if i % 10 == 5:
                    add(
                        "follow_ups",
                        {
                            "consultation_id": c,
                            "patient_id": pid,
                            "doctor_id": r["doctor_id"],
                            "question": "Should I keep taking the tablets after the pack runs out?",
                            "asked_at": r["ended_at"] + timedelta(days=1),
                            "answer": "Yes, ask for a renewal in the portal.",
                            "answered_at": r["ended_at"] + timedelta(days=1, hours=2),
                            "client_id": f"bench-{c}",
                        },
                    )
                if i % 3 == 1:
                    for kind in ("consultation", "service"):
                        add(
                            "ratings",
                            {
                                "patient_id": pid,
                                "kind": kind,
                                "consultation_id": c,
                                "doctor_id": r["doctor_id"],
                                "specialty_code": SPECIALTY,
                                "score": 1 + i % 5,
                                "comment": "Clear and kind." if i % 2 else "",
                                "rated_at": r["ended_at"] + timedelta(hours=1),
                            },
                        )
            await insert(t.follow_ups, rows.get("follow_ups", []))
            await insert(t.ratings, rows.get("ratings", []))

            await _results(conn, insert, pid, first, shape, rows)
        if engine.dialect.name == "postgresql":
            # Statistics, as autovacuum would gather within a minute of so many new rows: the
            # planner's choices then do not depend on how soon the bench starts reading.
            async with engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()
    counts = {name: len(values) for name, values in rows.items()}
    return Seeded(patient_id=pid, token=token, files=files, rows=counts)


async def _results(
    conn: Any,
    insert: Any,
    pid: int,
    first: datetime,
    shape: Shape,
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    """Laboratory results (a lipid panel every ~two months), as the integration API stores
    them."""
    from consult.storage import tables as t

    if not shape.results:
        return
    (lab,) = await insert(
        t.integrations,
        [
            {
                "name": "Bench laboratory",
                "token_hash": secrets.token_hex(32),
                "created_at": first,
            }
        ],
    )
    made = []
    for k in range(shape.results):
        at = first + timedelta(days=55 * k)
        made.append(
            {
                "patient_id": pid,
                "integration_id": lab,
                "sender": "Bench laboratory",
                "identifier_system": "urn:bench:lab",
                "identifier_value": f"report-{k}",
                "fingerprint": hashlib.sha256(str(k).encode()).hexdigest(),
                "status": "final",
                "code_system": "http://loinc.org",
                "code": "57698-3",
                "title": "Lipid panel",
                "effective_at": at,
                "issued_at": at + timedelta(hours=6),
                "received_at": at + timedelta(hours=6),
                "performer": "Bench laboratory",
            }
        )
    rows["results"] = made
    ids = await insert(t.results, made)
    panel = (
        ("2093-3", "Cholesterol", "mmol/L", 0.0, 5.0),
        ("2085-9", "HDL cholesterol", "mmol/L", 1.2, None),
        ("13457-7", "LDL cholesterol", "mmol/L", 0.0, 3.0),
        ("2571-8", "Triglycerides", "mmol/L", 0.0, 1.7),
    )
    for k, (rid, result) in enumerate(zip(ids, made, strict=True)):
        for n, (code, display, unit, low, high) in enumerate(panel):
            value = round((high or 2.0) * (0.8 + 0.05 * ((k + n) % 7)), 2)
            add_row = {
                "result_id": rid,
                "patient_id": pid,
                "position": n,
                "code_system": "http://loinc.org",
                "code": code,
                "display": display,
                "status": "final",
                "value_kind": "quantity",
                "value_number": value,
                "unit": unit,
                "low": low,
                "high": high,
                "interpretation": "H" if high is not None and value > high else "N",
                "effective_at": result["effective_at"],
            }
            rows.setdefault("result_observations", []).append(add_row)
    await insert(t.result_observations, rows["result_observations"])
