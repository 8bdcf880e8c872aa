"""The visit's outcome on the pages: the doctor finds products by typing, fills two
e-prescriptions, a referral and sick leave (the draft survives a reload), issues them and ends
the visit in one click; the patient's page shows them live with the access code and key, the
package's PDF printout holds both; the patient asks for a renewal, the doctor approves it in the
Renewals inbox and the patient sees the new package."""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect
from pypdf import PdfReader

from consult.outcome.validity import clinic_day
from tests.e2e.helpers import OpenPage, assert_no_problems, go_online, log_in, take_patient


def clinic_today() -> date:
    """The server's day for sick leave and validity (Warsaw's), not this machine's: after
    23:00 UTC they differ."""
    return clinic_day(datetime.now(UTC))


def pick(item: Locator, testid: str, typed: str, option: str) -> None:
    """Types into a search box and picks the option found (the search runs as one types)."""
    item.get_by_test_id(testid).press_sequentially(typed, delay=30)
    item.get_by_test_id(f"{testid}-results").get_by_role("option", name=re.compile(option)).click()


def fill_outcome(card: Locator, today: date) -> None:
    card.get_by_label("Recommendation for the patient's record").fill("Rest and fluids.")
    card.get_by_test_id("add-prescription").click()
    first = card.get_by_test_id("prescription-item").nth(0)
    pick(first, "product-search", "acard 75", r"^Acard 75 mg")
    first.get_by_test_id("pack-size").select_option("60")
    first.get_by_test_id("dosage").fill("1 tablet daily after a meal")
    first.get_by_test_id("validity-days").fill("180")
    first.get_by_test_id("therapy-days").fill("120")
    card.get_by_test_id("add-prescription").click()
    second = card.get_by_test_id("prescription-item").nth(1)
    pick(second, "product-search", "amotaks 500", r"^Amotaks 500 mg")
    # An antibiotic: no long-term fields; valid 7 days.
    expect(second.get_by_test_id("long-term")).to_be_hidden()
    second.get_by_test_id("dosage").fill("1 tablet every 8 hours for 7 days")
    second.get_by_test_id("payment-level").select_option("50%")

    card.get_by_test_id("add-referral").click()
    referral = card.get_by_test_id("referral-item")
    referral.get_by_test_id("referral-target").fill("cardiology")
    pick(referral, "referral-diagnosis", "I10", r"^I10 ")
    referral.get_by_test_id("referral-reason").fill("Blood pressure 165/100 three times.")

    card.get_by_test_id("add-sick-leave").click()
    leave = card.get_by_test_id("sick-leave-item")
    leave.get_by_test_id("sick-leave-end").fill((today + timedelta(days=4)).isoformat())
    leave.get_by_test_id("sick-leave-recommendation").select_option("2")
    pick(leave, "sick-leave-diagnosis", "J06.9", r"^J06\.9 ")


@pytest.mark.e2e
def test_the_doctor_issues_and_the_patient_sees_downloads_and_renews(
    open_page: OpenPage,
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    expect(patient.get_by_test_id("issued-empty")).to_be_visible()
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)

    today = clinic_today()
    fill_outcome(card, today)
    expect(card.get_by_test_id("draft-status")).to_contain_text("Draft saved")

    # The draft is on the server: a reload with this tab's copy gone brings it all back.
    doctor.evaluate("sessionStorage.clear()")
    doctor.reload()
    card = doctor.get_by_test_id("consultation-card")
    first = card.get_by_test_id("prescription-item").nth(0)
    expect(first.get_by_test_id("product-search")).to_have_value(re.compile(r"^Acard 75 mg"))
    expect(first.get_by_test_id("dosage")).to_have_value("1 tablet daily after a meal")
    expect(first.get_by_test_id("validity-days")).to_have_value("180")
    expect(card.get_by_test_id("prescription-item")).to_have_count(2)
    expect(card.get_by_test_id("referral-diagnosis")).to_have_value("I10")
    expect(card.get_by_test_id("sick-leave-recommendation")).to_have_value("2")

    card.get_by_test_id("issue-and-end").click()
    expect(card).to_have_attribute("data-status", "ended")
    issued = card.get_by_test_id("outcome-issued")
    expect(issued.get_by_test_id("issued-prescription")).to_have_count(2)
    code = issued.get_by_test_id("package-access-code").inner_text()
    key = issued.get_by_test_id("package-key").get_attribute("data-key")
    assert re.fullmatch(r"\d{4}", code) and key and re.fullmatch(r"\d{44}", key)

    # The patient's page shows them at once: the code, the key, each status, referral, leave.
    mine = patient.get_by_test_id("issued-section")
    package = mine.get_by_test_id("issued-package")
    expect(package).to_have_count(1)
    expect(package.get_by_test_id("package-access-code")).to_have_text(code)
    expect(package.get_by_test_id("package-key")).to_have_attribute("data-key", key)
    statuses = package.get_by_test_id("prescription-status")
    expect(statuses.nth(0)).to_contain_text("Active until")
    expect(statuses.nth(1)).to_have_text("Expires in 7 days")
    package = mine.locator(f'[data-package-id="{package.get_attribute("data-package-id")}"]')
    referral = mine.get_by_test_id("issued-referral")
    expect(referral.get_by_test_id("referral-target")).to_have_text("To: cardiology")
    expect(referral.get_by_test_id("referral-access-code")).to_have_text(re.compile(r"^\d{4}$"))
    expect(mine.get_by_test_id("sick-leave-period")).to_contain_text("(5 days)")
    # Her record's timeline holds them too, an item each.
    timeline = patient.get_by_test_id("record")
    for kind in ("prescription", "referral", "sick_leave"):
        expect(timeline.locator(f"[data-testid=timeline-item][data-kind={kind}]")).to_have_count(1)

    # The package's printout: the key and the access code are in the PDF's text.
    with patient.expect_download() as download_info:
        package.get_by_test_id("package-pdf").click()
    pdf = PdfReader(io.BytesIO(download_info.value.path().read_bytes()))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert key in text.replace(" ", "") and code in text

    # A renewal of the long-term prescription: asked, approved in the inbox, a new package.
    first_id = (
        package.get_by_test_id("issued-prescription").nth(0).get_attribute("data-prescription-id")
    )
    acard = mine.locator(f'[data-prescription-id="{first_id}"]')
    acard.get_by_test_id("ask-renewal").click()
    acard.get_by_test_id("renewal-note-input").fill("Running out next week.")
    acard.get_by_test_id("renewal-send").click()
    expect(acard.get_by_test_id("renewal-state")).to_have_attribute("data-status", "open")
    request = doctor.get_by_test_id("renewal")
    expect(request.get_by_test_id("renewal-note")).to_have_text("Running out next week.")
    request.get_by_test_id("renewal-dosage").fill("1 tablet daily in the evening")
    request.get_by_test_id("renewal-approve").click()
    expect(doctor.get_by_test_id("renewals-empty")).to_be_visible()
    expect(mine.get_by_test_id("issued-package")).to_have_count(2)
    renewed = mine.locator(f'[data-renewal-of="{first_id}"]')
    expect(renewed.get_by_test_id("issued-prescription")).to_contain_text(
        "1 tablet daily in the evening"
    )
    assert renewed.get_by_test_id("package-key").get_attribute("data-key") != key
    expect(acard.get_by_test_id("renewal-state")).to_have_attribute("data-status", "approved")
    assert_no_problems(doctor_problems, patient_problems)


@pytest.mark.e2e
def test_refusals_are_shown_on_the_panel_and_every_try_carries_one_key(
    open_page: OpenPage, tmp_path: Path
) -> None:
    # Anna has no PESEL in her profile (the demo gives her one: taken out here).
    with sqlite3.connect(tmp_path / "consult.db") as db:
        db.execute("UPDATE users SET pesel = NULL WHERE email = 'anna@demo.test'")
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    for seen, why in ((doctor_problems, "refused on purpose"), (patient_problems, "a bad PESEL")):
        seen.expect_error(r"status of (400|409)", why)
    doctor_problems.expect_error(r"ERR_FAILED", "the test aborts the first try on purpose")
    go_online(doctor)
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    # Her page asks for it; a wrong one is refused with the reason.
    patient.get_by_label("PESEL (11 digits)").fill("85031412360")
    patient.get_by_test_id("pesel-save").click()
    expect(patient.get_by_test_id("pesel-error")).to_contain_text("check digit")
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)

    # A prescription without its dosage is not sent: the panel says what is missing.
    card.get_by_test_id("add-prescription").click()
    item = card.get_by_test_id("prescription-item")
    pick(item, "product-search", "acard 75", r"^Acard 75 mg")
    issue = card.get_by_test_id("issue-and-end")
    issue.click()
    problems = card.get_by_test_id("outcome-problems")
    expect(problems).to_contain_text("Prescription 1 · Dosage: write the dosage")
    expect(item.get_by_test_id("dosage")).to_have_attribute("aria-invalid", "true")
    item.get_by_test_id("dosage").fill("1 tablet daily")
    card.get_by_test_id("add-sick-leave").click()
    leave = card.get_by_test_id("sick-leave-item")
    leave.get_by_test_id("sick-leave-start").fill((clinic_today() - timedelta(days=5)).isoformat())
    leave.get_by_test_id("sick-leave-backdating").fill("Fever since last week.")
    leave.get_by_test_id("sick-leave-end").fill(clinic_today().isoformat())
    leave.get_by_test_id("sick-leave-recommendation").select_option("1")
    leave.get_by_test_id("sick-leave-diagnosis").fill("J06.9")

    keys: list[str] = []
    doctor.on(
        "request",
        lambda r: (
            keys.append(r.headers["idempotency-key"])
            if r.method == "POST" and r.url.endswith("/outcome")
            else None
        ),
    )
    # The first try never reaches the server (the connection drops): said, and tried again.
    doctor.route("**/api/consultations/*/outcome", lambda route: route.abort(), times=1)
    issue.click()
    expect(problems).to_contain_text("cannot be reached")
    issue.click()
    expect(problems).to_contain_text("PESEL must be in their profile")
    patient.get_by_label("PESEL (11 digits)").fill("85031412361")
    patient.get_by_test_id("pesel-save").click()
    expect(patient.get_by_test_id("pesel-saved")).to_be_visible()
    issue.click()
    expect(problems).to_contain_text("at most 3 days before")
    expect(leave.get_by_test_id("sick-leave-start")).to_have_attribute("aria-invalid", "true")
    leave.get_by_test_id("sick-leave-start").fill(clinic_today().isoformat())
    expect(leave.get_by_test_id("sick-leave-backdating")).to_be_hidden()
    issue.dblclick()
    expect(card).to_have_attribute("data-status", "ended")
    mine = patient.get_by_test_id("issued-section")
    expect(mine.get_by_test_id("issued-package")).to_have_count(1)
    expect(mine.get_by_test_id("issued-sick-leave")).to_have_count(1)
    # Four tries, one key: a retry of any of them could only give the one outcome.
    assert len(keys) == 4 and len(set(keys)) == 1, keys

    # The doctor cancels the sick leave, saying why: it stays on her page, marked, at once.
    issued = card.get_by_test_id("outcome-issued").get_by_test_id("issued-sick-leave")
    issued.get_by_test_id("cancel-document").click()
    issued.get_by_test_id("cancel-reason").fill("Issued by mistake")
    issued.get_by_test_id("cancel-confirm").click()
    expect(issued.get_by_test_id("cancelled-note")).to_contain_text("Issued by mistake")
    expect(
        mine.get_by_test_id("issued-sick-leave").get_by_test_id("cancelled-note")
    ).to_contain_text("Issued by mistake")
    assert_no_problems(doctor_problems, patient_problems)
