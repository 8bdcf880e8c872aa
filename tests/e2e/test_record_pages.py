"""The record page reads a long record a page at a time: the newest consultations first,
"Show older" for the rest, and a long transcript whole on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.storage import tables as t
from tests.e2e.helpers import OpenPage, assert_no_problems, log_in
from tests.support import Server

CONSULTATIONS = 25  # a page holds 20
LONG = 260  # messages in the oldest one: the record carries its first 50


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
            messages = [(ids[0], seq, f"long chat line {seq}") for seq in range(1, LONG + 1)]
            messages += [(cid, 1, f"visit {n}") for n, cid in enumerate(ids[1:], 2)]
            conn.execute(
                t.messages.insert(),
                [
                    {
                        "consultation_id": cid,
                        "seq": seq,
                        "sender_id": anna,
                        "client_id": f"seed-{seq}",
                        "body": body,
                        "created_at": start,
                    }
                    for cid, seq, body in messages
                ],
            )
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
