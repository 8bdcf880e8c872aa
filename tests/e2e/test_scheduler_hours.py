"""The scheduler page's weekly hours: a scheduler picks a doctor, adds hours (their slots open
for booking at once), is told clearly when new hours overlap, and removes hours again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in


@pytest.mark.e2e
def test_a_scheduler_adds_and_removes_a_doctors_weekly_hours(open_page: OpenPage) -> None:
    page, problems = open_page("scheduler")
    page.goto("/scheduler/")
    log_in(page, "scheduler@demo.test")
    hours = page.get_by_test_id("hours")
    expect(hours.get_by_test_id("hours-doctor")).to_contain_text("Dr Adam Serce")
    hours.get_by_test_id("hours-doctor").select_option(label="Dr Adam Serce")
    rows = hours.get_by_test_id("hours-row")
    expect(rows).to_have_count(10)  # the demo's weekday mornings and afternoons
    expect(rows.first).to_contain_text("Monday")
    expect(rows.first).to_contain_text("08:00–12:00")
    expect(hours.get_by_test_id("hours-timezone")).to_have_value("Europe/Warsaw")

    # A Saturday morning of online consultations: added, and its slots open at once.
    hours.get_by_test_id("hours-weekday").select_option(label="Saturday")
    hours.get_by_test_id("hours-start").fill("09:00")
    hours.get_by_test_id("hours-end").fill("11:00")
    hours.get_by_test_id("hours-specialty").select_option(label="Cardiology")
    hours.get_by_test_id("hours-kind").select_option(label="Online")
    hours.get_by_test_id("hours-slot-minutes").fill("30")
    hours.get_by_test_id("hours-add").click()
    notice = hours.get_by_test_id("hours-notice")
    expect(notice).to_have_text(
        re.compile(r"^Added Saturday 09:00–11:00 \(Cardiology, online\): [4-8] slots open")
    )
    expect(rows).to_have_count(11)
    saturday = rows.filter(has_text="Saturday")
    expect(saturday).to_contain_text("30 min")
    found = re.search(r": (\d) slots", notice.inner_text())
    assert found is not None
    created = int(found.group(1))

    # Monday 11:00-13:00 overlaps his Monday morning: refused, saying which hours, nothing added.
    hours.get_by_test_id("hours-weekday").select_option(label="Monday")
    hours.get_by_test_id("hours-start").fill("11:00")
    hours.get_by_test_id("hours-end").fill("13:00")
    hours.get_by_test_id("hours-add").click()
    expect(hours.get_by_test_id("hours-error")).to_contain_text("overlap the doctor's hours")
    expect(hours.get_by_test_id("hours-error")).to_contain_text("Mon 08:00-12:00")
    expect(rows).to_have_count(11)

    # Removing the Saturday hours takes their free slots away.
    saturday.get_by_test_id("hours-remove").click()
    expect(notice).to_have_text(
        f"Removed Saturday 09:00–11:00 (Cardiology, online): {created} free slots removed."
    )
    expect(rows).to_have_count(10)
    expect(rows.filter(has_text="Saturday")).to_have_count(0)
    assert_no_problems(problems)
