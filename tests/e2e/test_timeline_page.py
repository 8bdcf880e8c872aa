"""The patient's timeline in the browser: her record lists every kind of thing, newest first;
she filters it to prescriptions (each with its status), then to days without any."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.storage import tables as t
from tests.backends import off_loop
from tests.e2e.helpers import OpenPage, assert_no_problems, log_in
from tests.support import Server
from tests.timeline_history import seed_history

CONSULTATIONS = 3


def seed(server: Server) -> None:
    """Three consultations of Anna's with Dr House, each with everything, a day ago and before."""
    database = server.log.parent / "consult.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            users = dict(conn.execute(sa.select(t.users.c.email, t.users.c.id)).all())
    finally:
        engine.dispose()
    doctors = (users["dr.house@demo.test"], users["dr.grey@demo.test"])
    newest = datetime.now(UTC) - timedelta(days=1)
    history = seed_history(
        f"sqlite+aiosqlite:///{database}", users["anna@demo.test"], doctors, CONSULTATIONS, newest
    )
    off_loop(asyncio.run, history)


@pytest.mark.e2e
def test_the_patient_filters_her_timeline_to_prescriptions(
    open_page: OpenPage, server: Server
) -> None:
    seed(server)
    patient, problems = open_page("patient")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    record = patient.get_by_test_id("record")
    items = record.get_by_test_id("timeline-item")
    expect(items).to_have_count(20)  # a page: every kind of the newest visits
    kinds = set(items.evaluate_all("items => items.map(i => i.dataset.kind)"))
    assert {"consultation", "booking", "prescription", "renewal"} <= kinds, kinds
    expect(record.get_by_test_id("record-older")).to_have_text("More")

    # Only prescriptions: "None", then the one kind.
    record.get_by_test_id("timeline-none").click()
    expect(record.get_by_test_id("timeline-note")).to_contain_text("Choose at least one kind")
    expect(items).to_have_count(0)
    record.get_by_test_id("timeline-kind-prescription").check()
    expect(items).to_have_count(CONSULTATIONS)
    expect(
        record.locator("[data-testid=timeline-item]:not([data-kind=prescription])")
    ).to_have_count(0)
    statuses = record.get_by_test_id("prescription-status")
    expect(statuses).to_have_count(CONSULTATIONS)
    expect(statuses.first).to_contain_text("Active until")
    expect(record.get_by_test_id("package-access-code").first).to_have_text("1234")
    expect(record.get_by_test_id("record-older")).to_have_count(0)

    # From tomorrow on there are none; the whole range back again shows them.
    tomorrow = (datetime.now() + timedelta(days=1)).date().isoformat()
    record.get_by_test_id("timeline-from").fill(tomorrow)
    expect(record.get_by_test_id("record-empty")).to_have_text("Nothing matches these filters.")
    record.get_by_test_id("timeline-from").fill("")
    expect(items).to_have_count(CONSULTATIONS)
    assert_no_problems(problems)
