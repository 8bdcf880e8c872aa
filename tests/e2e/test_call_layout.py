"""A call on both pages as a user sees it at 1280 × 900: the consultation and its call come first
on screen, the headers say the form now (not the one chosen at Start), the quality table says
"measuring…" until there are figures and gives no frame rate for audio, and "Hang up" is the
one control that goes back to chat."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.helpers import OpenPage, assert_no_problems
from tests.e2e.test_calls import go_online, plays, start

VIEWPORT = {"width": 1280, "height": 900}  # the open_page fixture's
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"

# Every quality table the doctor's page draws, as rows {leg, measured, cells}: a figure shown
# for 2 s between two updates is seen here even if no assertion runs at that moment.
WATCH_QUALITY = """(table) => {
  window.qualitySeen = [];
  const snap = () => window.qualitySeen.push([...table.querySelectorAll("tr[data-leg]")].map(
    (r) => ({leg: r.dataset.leg, measured: r.dataset.measured,
             cells: [...r.cells].map((c) => c.textContent)})));
  new MutationObserver(snap).observe(table, {childList: true, subtree: true});
}"""


def on_screen_without_scrolling(page: Page, element: Locator) -> None:
    """The element is visible and wholly inside the viewport with the page scrolled to the top."""
    page.evaluate("window.scrollTo(0, 0)")
    expect(element).to_be_visible()
    box = element.bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], box
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box


def quality_seen(doctor: Page) -> list[list[dict[str, Any]]]:
    seen: list[list[dict[str, Any]]] = doctor.evaluate("window.qualitySeen")
    return seen


def wait_measured(doctor: Page, since: int) -> list[dict[str, Any]]:
    """The first table since snapshot ``since`` where both legs have figures (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for rows in quality_seen(doctor)[since:]:
            if len(rows) == 2 and all(r["measured"] == "yes" for r in rows):
                return rows
        time.sleep(0.2)
    pytest.fail(f"no measured quality table: {quality_seen(doctor)[since:]}")


def one_control_to_chat(panel: Locator) -> None:
    """In a call, "Hang up" is shown and no "Switch to chat" beside it."""
    expect(panel.get_by_test_id("call-hangup")).to_be_visible()
    expect(panel.get_by_test_id("call-form-chat")).to_have_count(0)
    expect(panel.get_by_role("button", name="Switch to chat")).to_have_count(0)


@pytest.mark.e2e
def test_a_call_comes_first_says_its_form_measures_and_hangs_up_with_one_control(
    open_page: OpenPage,
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    # The doctor's page records every quality table from before the call starts.
    card = start(
        patient,
        doctor,
        "video",
        lambda card: card.get_by_test_id("call-quality").evaluate(WATCH_QUALITY),
    )
    consultation = patient.get_by_test_id("consultation")
    expect(consultation).to_have_attribute("data-status", "active")
    patient_call = patient.get_by_test_id("call-panel")
    doctor_call = card.get_by_test_id("call-panel")
    plays(doctor_call, video=True)
    plays(patient_call, video=True)

    # Both pages: the call's pictures are on screen as the page opens at the top, above
    # Availability and the follow-ups (doctor), above the disabled Start form (patient).
    for page, panel in ((doctor, doctor_call), (patient, patient_call)):
        on_screen_without_scrolling(page, panel.get_by_test_id("remote-video"))
        on_screen_without_scrolling(page, panel.get_by_test_id("local-video"))
    patient_status = patient.get_by_test_id("consultation-status")
    on_screen_without_scrolling(patient, patient_status)
    start_box = patient.get_by_test_id("start-section").bounding_box()
    consultation_box = consultation.bounding_box()
    assert start_box and consultation_box and consultation_box["y"] < start_box["y"]
    presence_box = doctor.get_by_test_id("presence-section").bounding_box()
    card_box = card.bounding_box()
    assert presence_box and card_box and card_box["y"] < presence_box["y"]
    if os.environ.get("CONSULT_E2E_SCREENSHOTS"):  # what the viewport shows, to look at
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        doctor.screenshot(path=str(ARTIFACTS / "call-layout-doctor.png"))
        patient.screenshot(path=str(ARTIFACTS / "call-layout-patient.png"))

    # The headers say the form the consultation is in.
    meta = card.get_by_test_id("consultation-meta")
    expect(meta).to_contain_text("Internal medicine · video ·")
    expect(patient_status).to_contain_text("(Internal medicine, video)")

    # Quality: "measuring…" until the legs have figures, never a zero that is no measurement.
    rows = wait_measured(doctor, 0)
    assert all(r["cells"][-1].endswith(" fps") for r in rows), rows
    seen = quality_seen(doctor)
    assert any(r["cells"][2] == "measuring…" for table in seen for r in table), seen
    zeros = [r for table in seen for r in table if {"0 kbit/s", "0 fps"} & set(r["cells"])]
    assert zeros == [], zeros

    # One control back to chat on both pages.
    one_control_to_chat(doctor_call)
    one_control_to_chat(patient_call)

    # Down to voice: both headers follow; the table gives no frame rate for audio.
    doctor_call.get_by_test_id("call-form-voice").click()
    expect(patient_call).to_have_attribute("data-form", "voice")
    expect(meta).to_contain_text("Internal medicine · voice ·")
    expect(patient_status).to_contain_text("(Internal medicine, voice)")
    plays(patient_call, video=False)
    plays(doctor_call, video=False)
    one_control_to_chat(patient_call)
    since = len(quality_seen(doctor))
    rows = wait_measured(doctor, since)
    assert [r["cells"][-1] for r in rows] == ["audio only", "audio only"], rows
    later = [r for table in quality_seen(doctor)[since:] for r in table]
    assert not any(r["cells"][-1].endswith("fps") for r in later), later
    assert not any({"0 kbit/s"} & set(r["cells"]) for r in later), later

    # Hang up: chat, and the headers say so.
    patient_call.get_by_test_id("call-hangup").click()
    expect(doctor_call).to_have_attribute("data-form", "chat")
    expect(meta).to_contain_text("Internal medicine · chat ·")
    expect(patient_status).to_contain_text("(Internal medicine, chat)")
    expect(patient_call.get_by_test_id("call-hangup")).to_be_hidden()
    assert_no_problems(doctor_problems, patient_problems)
