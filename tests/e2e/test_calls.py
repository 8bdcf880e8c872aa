"""Voice and video calls in two headless Chromium pages with fake camera and microphone: a
video consultation from the queue plays each side's video on the other's page, the doctor sees
the call quality, switching to voice keeps the sound, hanging up leaves the chat; a chat
consultation switches to video after the doctor agrees, and records with both consents."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.helpers import OpenPage, assert_no_problems, chat_bodies, log_in, say, take_patient


def go_online(doctor: Page) -> None:
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-internal-medicine").check()
    for form in ("chat", "voice", "video"):
        doctor.get_by_test_id(f"form-{form}").check()
    doctor.get_by_test_id("go-online").click()
    expect(doctor.get_by_test_id("presence-status")).to_have_attribute("data-state", "online")


def start(
    patient: Page,
    doctor: Page,
    form: str,
    before_taking: Callable[[Locator], object] | None = None,
) -> Locator:
    """The patient starts a consultation in ``form``; the doctor takes her: the doctor's card.
    ``before_taking(card)`` runs once the card is there, before the doctor takes the patient."""
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id(f"form-{form}").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card).to_have_count(1)
    if before_taking:
        before_taking(card)
    take_patient(card)
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "active")
    return card


def plays(where: Page | Locator, *, video: bool) -> None:
    """The remote media element is playing: the clock advances (and a picture has a size)."""
    element = where.get_by_test_id("remote-video")
    check = "(v) => v.srcObject && v.srcObject.getAudioTracks().length > 0 && v.currentTime > 0" + (
        " && v.videoWidth > 0" if video else ""
    )
    handle = element.element_handle()
    page = where if isinstance(where, Page) else where.page
    page.wait_for_function(check, arg=handle, timeout=20_000)
    before = float(element.evaluate("(v) => v.currentTime"))
    frames = int(element.evaluate("(v) => v.getVideoPlaybackQuality().totalVideoFrames"))
    time.sleep(1.0)
    after = float(element.evaluate("(v) => v.currentTime"))
    assert after > before + 0.5, (before, after)
    # Packets arrive: a remote track is "muted" while none do.
    assert element.evaluate("(v) => v.srcObject.getTracks().every((t) => !t.muted)")
    if video:
        assert int(element.evaluate("(v) => v.videoWidth")) > 0
        # New pictures, not a frozen one: the decoder keeps producing frames. Waited for (up to
        # 10 s) rather than counted over a fixed second: a loaded machine decodes fewer a second.
        page.wait_for_function(
            "([v, n]) => v.getVideoPlaybackQuality().totalVideoFrames > n",
            arg=[handle, frames + 10],
            timeout=10_000,
        )
        expect(element).to_be_visible()
    else:
        assert element.evaluate("(v) => v.srcObject.getVideoTracks().length") == 0
        expect(element).to_be_hidden()


@pytest.mark.e2e
def test_video_call_plays_both_ways_switches_to_voice_and_hangs_up(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    card = start(patient, doctor, "video")
    patient_call = patient.get_by_test_id("call-panel")
    doctor_call = card.get_by_test_id("call-panel")

    # Matched: each page plays the other's camera and sound, and shows its own preview.
    expect(patient_call).to_have_attribute("data-form", "video")
    plays(doctor_call, video=True)
    plays(patient_call, video=True)
    expect(patient_call.get_by_test_id("call-peer-state")).to_have_text("The doctor: connected")
    expect(doctor_call.get_by_test_id("call-peer-state")).to_have_text("The patient: connected")
    # Only the doctor sees the call quality of both legs, from the server's statistics.
    quality = doctor_call.get_by_test_id("call-quality")
    expect(quality).to_be_visible(timeout=10_000)
    expect(quality.locator("tr")).to_have_count(3)
    expect(quality).to_contain_text("patient")
    expect(quality).to_contain_text("fps")
    expect(patient_call.get_by_test_id("call-quality")).to_be_hidden()

    # The patient's page reloads (a dropped network, a new peer): she rejoins the same call.
    patient.reload()
    expect(patient_call).to_have_attribute("data-form", "video")
    plays(patient_call, video=True)
    plays(doctor_call, video=True)
    expect(doctor_call.get_by_test_id("call-peer-state")).to_have_text("The patient: connected")

    # Mute and camera off are the page's own tracks.
    patient_call.get_by_test_id("call-mute").click()
    expect(patient_call.get_by_test_id("call-mute")).to_have_text("Unmute")
    patient_call.get_by_test_id("call-camera").click()
    expect(patient_call.get_by_test_id("call-camera")).to_have_text("Camera on")
    patient_call.get_by_test_id("call-camera").click()
    patient_call.get_by_test_id("call-mute").click()

    # Down to voice needs no consent: both pages go voice-only and still hear each other.
    doctor_call.get_by_test_id("call-form-voice").click()
    expect(patient_call).to_have_attribute("data-form", "voice")
    expect(doctor_call).to_have_attribute("data-form", "voice")
    plays(patient_call, video=False)
    plays(doctor_call, video=False)

    # Hang up: no call, the chat goes on.
    patient_call.get_by_test_id("call-hangup").click()
    expect(doctor_call).to_have_attribute("data-form", "chat")
    expect(patient_call.get_by_test_id("call-status")).to_have_text("Chat only: no call.")
    say(patient, "Thank you, doctor.")
    expect(chat_bodies(card)).to_have_text(["Thank you, doctor."])
    assert_no_problems(doctor_problems, patient_problems)


@pytest.mark.e2e
def test_chat_switches_to_video_with_consent_and_records(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    card = start(patient, doctor, "chat")
    patient_call = patient.get_by_test_id("call-panel")
    doctor_call = card.get_by_test_id("call-panel")
    expect(patient_call).to_have_attribute("data-form", "chat")

    # Both agree to recording before the call; nothing is recorded in a chat.
    patient_call.get_by_test_id("call-record-consent").check()
    expect(doctor_call.get_by_test_id("call-recording")).to_have_text("Not recorded.")
    doctor_call.get_by_test_id("call-record-consent").check()

    # The patient asks for video; the doctor is asked, and agrees.
    patient_call.get_by_test_id("call-form-video").click()
    request = doctor_call.get_by_test_id("call-request")
    expect(request).to_be_visible()
    expect(request).to_contain_text("The patient asks to switch to video.")
    doctor_call.get_by_test_id("call-form-accept").click()
    expect(patient_call).to_have_attribute("data-form", "video")
    plays(doctor_call, video=True)
    plays(patient_call, video=True)
    # Both consented and the call runs: it is recorded, and both pages say so.
    expect(patient_call).to_have_attribute("data-recording", "yes")
    expect(doctor_call.get_by_test_id("call-recording")).to_contain_text("being recorded")
    time.sleep(1.5)
    doctor_call.get_by_test_id("call-hangup").click()
    expect(patient_call).to_have_attribute("data-recording", "no")
    expect(patient_call).to_have_attribute("data-form", "chat")

    # The record lists the forms used and the recording, downloadable by the patient.
    # It is composed into one playable file after the call (a few seconds).
    patient_id = patient.evaluate("async () => (await (await fetch('/api/me')).json()).id")
    deadline = time.monotonic() + 120
    while True:
        record = patient.evaluate(
            "async (id) => (await fetch(`/api/patients/${id}/record`)).json()", patient_id
        )
        (entry,) = record["entries"]
        (recording,) = entry["recordings"]
        if recording["status"] != "composing" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [f["form"] for f in entry["forms"]] == ["chat", "video", "chat"]
    assert recording["status"] == "ready" and recording["size"] > 1000
    size = patient.evaluate(
        "async (url) => (await (await fetch(url)).arrayBuffer()).byteLength", recording["url"]
    )
    assert size == recording["size"]
    # Chromium plays it: one picture of both sides, and sound.
    played = patient.evaluate(
        """async (url) => {
          const video = document.createElement("video");
          video.muted = true;
          video.src = URL.createObjectURL(await (await fetch(url)).blob());
          await new Promise((ok, no) => { video.onloadedmetadata = ok; video.onerror = no; });
          await video.play();
          await new Promise((ok) => setTimeout(ok, 700));
          video.pause();
          return { width: video.videoWidth, height: video.videoHeight,
                   audio: video.webkitAudioDecodedByteCount };
        }""",
        recording["url"],
    )
    assert played["width"] == 1280 and played["height"] == 480 and played["audio"] > 0, played
    # Ended: the patient's record on her page lists the forms and links the recording.
    patient.get_by_test_id("end-consultation").click()
    expect(patient.get_by_test_id("record-forms")).to_contain_text("chat")
    expect(patient.get_by_test_id("record-forms")).to_contain_text("video")
    link = patient.get_by_test_id("record-recording").get_by_role("link")
    expect(link).to_have_attribute("href", recording["url"])
    assert_no_problems(doctor_problems, patient_problems)
