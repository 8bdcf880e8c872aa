"""The pages read long histories a page at a time: the record (the timeline) shows the newest
consultations first, "More" for the rest, and a transcript when opened, a long one whole on
demand; the chat panel catches up with a transcript longer than a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.storage import tables as t
from tests.e2e.helpers import OpenPage, assert_no_problems, chat_bodies, log_in, take_patient
from tests.support import Server

CONSULTATIONS = 25  # a page holds 20
LONG = 260  # messages in the oldest one: the record carries its first 50


def store_messages(conn: sa.Connection, rows: list[tuple[int, int, int, str]]) -> None:
    """(consultation_id, seq, sender_id, body) rows, straight into the database."""
    at = datetime.now(UTC) - timedelta(hours=1)
    conn.execute(
        t.messages.insert(),
        [
            {
                "consultation_id": cid,
                "seq": seq,
                "sender_id": sender,
                "client_id": f"seed-{seq}",
                "body": body,
                "created_at": at,
            }
            for cid, seq, sender, body in rows
        ],
    )


def seed(database: Path) -> tuple[int, int]:
    """Anna's finished consultations with Dr House, stored straight into the server's database;
    returns the ids of the oldest (the long transcript) and the newest."""
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            users = dict(conn.execute(sa.select(t.users.c.email, t.users.c.id)).all())
            anna, house = users["anna@demo.test"], users["dr.house@demo.test"]
            start = datetime.now(UTC) - timedelta(days=CONSULTATIONS + 1)
            ids = []
            for day in range(CONSULTATIONS):
                at = start + timedelta(days=day)
                ids.append(
                    conn.execute(
                        t.consultations.insert()
                        .values(
                            patient_id=anna,
                            doctor_id=house,
                            specialty_code="internal-medicine",
                            form="chat",
                            status="ended",
                            created_at=at,
                            started_at=at,
                            ended_at=at + timedelta(minutes=15),
                            last_seq=LONG if day == 0 else 1,
                        )
                        .returning(t.consultations.c.id)
                    ).scalar_one()
                )
            messages = [(ids[0], seq, anna, f"long chat line {seq}") for seq in range(1, LONG + 1)]
            messages += [(cid, 1, anna, f"visit {n}") for n, cid in enumerate(ids[1:], 2)]
            store_messages(conn, messages)
    finally:
        engine.dispose()
    return ids[0], ids[-1]


@pytest.mark.e2e
def test_the_record_shows_older_consultations_and_a_long_transcript_whole(
    open_page: OpenPage, server: Server
) -> None:
    oldest, newest = seed(server.log.parent / "consult.db")
    patient, problems = open_page("patient")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    record = patient.get_by_test_id("record")
    entries = record.get_by_test_id("record-entry")
    expect(entries).to_have_count(20)
    expect(entries.first).to_have_attribute("data-consultation-id", str(newest))
    long_entry = record.locator(f'[data-consultation-id="{oldest}"]')
    expect(long_entry).to_have_count(0)

    record.get_by_test_id("record-older").click()
    expect(entries).to_have_count(CONSULTATIONS)
    expect(record.get_by_test_id("record-older")).to_have_count(0)
    expect(entries.last).to_have_attribute("data-consultation-id", str(oldest))

    lines = long_entry.get_by_test_id("record-message")
    expect(lines).to_have_count(0)  # the timeline reads a transcript when it is opened
    long_entry.get_by_test_id("record-transcript-toggle").click()
    expect(lines).to_have_count(50)
    long_entry.get_by_test_id("record-transcript-more").click()
    expect(lines).to_have_count(LONG)
    expect(lines.last.get_by_test_id("message-body")).to_have_text(f"long chat line {LONG}")
    expect(long_entry.get_by_test_id("record-transcript-more")).to_have_count(0)
    seqs = [int(s) for s in lines.evaluate_all("ls => ls.map(l => l.dataset.seq)")]
    assert seqs == list(range(1, LONG + 1))

    # A refresh keeps the older page shown.
    patient.get_by_test_id("record-refresh").click()
    expect(entries).to_have_count(CONSULTATIONS)
    assert_no_problems(problems)


@pytest.mark.e2e
def test_the_chat_catches_up_with_a_transcript_longer_than_a_page(
    open_page: OpenPage, server: Server
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-internal-medicine").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    take_patient(doctor.get_by_test_id("consultation-card"))
    expect(patient.get_by_test_id("chat-transcript")).to_be_visible()

    # 1,100 messages stored meanwhile (three pages of 500): a reload shows every one, in order.
    total = 1100
    engine = sa.create_engine(f"sqlite:///{server.log.parent / 'consult.db'}")
    try:
        with engine.begin() as conn:
            cid, anna = conn.execute(
                sa.select(t.consultations.c.id, t.consultations.c.patient_id).where(
                    t.consultations.c.status == "active"
                )
            ).one()
            store_messages(conn, [(cid, seq, anna, f"line {seq}") for seq in range(1, total + 1)])
            conn.execute(
                t.consultations.update().where(t.consultations.c.id == cid).values(last_seq=total)
            )
    finally:
        engine.dispose()
    for page in (patient, doctor):
        page.reload()
        bodies = chat_bodies(page)
        expect(bodies).to_have_count(total, timeout=20_000)
        expect(bodies.last).to_have_text(f"line {total}")
    assert_no_problems(doctor_problems, patient_problems)
