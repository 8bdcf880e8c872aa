"""A whole chat consultation in two browsers: the doctor goes online, the patient starts a
consultation, they chat both ways, the doctor writes a recommendation and ends the visit, and
the patient's record shows the consultation, its transcript and the recommendation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.e2e.helpers import OpenPage, assert_no_problems, chat_bodies, log_in, say, take_patient

DOCTOR = "Dr Gregory House"
PATIENT = "Anna Kowalska"
HOSTILE = "<b>bold</b><img src=x onerror=alert(1)>"
RECOMMENDATION = "Rest, drink plenty of fluids; paracetamol 500 mg up to 4 times a day."


class SocketTap:
    """Sits between the page and the server's Socket.IO websocket (``route_web_socket``) and
    plays the network's tricks on demand: lose one outgoing message, lose the server's ack of
    one (after the server stored it), or refuse new connections for a while."""

    def __init__(self) -> None:
        self.lose_send: str | None = None  # drop the chat:send whose frame contains this
        # Forward it, but drop the server's answers: the ack and the echo to the sender's room.
        self.lose_ack: str | None = None
        self._echo: str | None = None
        self.refuse = False
        self.lost: list[str] = []
        self._ack_ids: set[str] = set()
        self.pages: list[WebSocketRoute] = []

    def __call__(self, ws: WebSocketRoute) -> None:
        if self.refuse:
            ws.close()
            return
        server = ws.connect_to_server()
        self.pages.append(ws)

        def up(message: Any) -> None:
            send = re.match(r'42(\d+)\["chat:send",', message) if isinstance(message, str) else None
            if send and self.lose_send and self.lose_send in message:
                self.lose_send = None
                self.lost.append(message)
                return
            if send and self.lose_ack and self.lose_ack in message:
                self._echo, self.lose_ack = self.lose_ack, None
                self._ack_ids.add(send.group(1))
            server.send(message)

        def down(message: Any) -> None:
            ack = re.match(r"43(\d+)\[", message) if isinstance(message, str) else None
            if ack and ack.group(1) in self._ack_ids:
                self._ack_ids.discard(ack.group(1))
                self.lost.append(message)
                return
            if self._echo and message.startswith('42["chat:message"') and self._echo in message:
                self._echo = None
                self.lost.append(message)
                return
            ws.send(message)

        ws.on_message(up)
        server.on_message(down)

    def cut(self) -> None:
        """Close the page's live connections (the pages reconnect on their own)."""
        for ws in self.pages:
            ws.close()
        self.pages.clear()


@pytest.mark.e2e
def test_chat_consultation_from_start_to_record(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")

    # The doctor logs in and goes online for internal medicine, chat.
    doctor.goto("/doctor/")
    log_in(doctor, "dr.house@demo.test")
    expect(doctor.get_by_test_id("whoami")).to_have_text(DOCTOR)
    expect(doctor.get_by_test_id("connection")).to_have_attribute("data-state", "on")
    doctor.get_by_test_id("specialty-internal-medicine").check()
    expect(doctor.get_by_test_id("form-chat")).to_be_checked()
    doctor.get_by_test_id("go-online").click()
    presence = doctor.get_by_test_id("presence-status")
    expect(presence).to_have_attribute("data-state", "online")
    expect(presence).to_contain_text("Internal medicine")
    expect(doctor.get_by_test_id("no-consultations")).to_be_visible()

    # The patient logs in: an empty record; every specialty is covered by her premium plan.
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    expect(patient.get_by_test_id("whoami")).to_contain_text(PATIENT)
    expect(patient.get_by_test_id("record-empty")).to_be_visible()
    expect(patient.locator("#specialty option:disabled")).to_have_count(0)

    # She starts a chat consultation with internal medicine; the free doctor takes her at once.
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("patient-name")).to_have_text(PATIENT)
    take_patient(card)
    consultation = patient.get_by_test_id("consultation")
    expect(consultation).to_have_attribute("data-status", "active")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text(f"With {DOCTOR}")
    expect(card.get_by_test_id("consultation-meta")).to_contain_text("Internal medicine")
    # The card's timeline of the patient's record holds this consultation, in progress.
    history = card.get_by_test_id("patient-history").get_by_test_id("record-entry")
    expect(history).to_have_attribute("data-status", "active")

    # They chat both ways; each message shows on the other's page.
    say(patient, "Hello doctor, I have had a sore throat since Monday.")
    expect(chat_bodies(card)).to_have_text(["Hello doctor, I have had a sore throat since Monday."])
    say(card, "Hello Anna. Any fever?", with_enter=True)
    expect(chat_bodies(patient)).to_have_text(
        ["Hello doctor, I have had a sore throat since Monday.", "Hello Anna. Any fever?"]
    )

    # Reloading the patient's page restores the open consultation and its transcript.
    tap = SocketTap()
    patient.route_web_socket(re.compile(r"/socket\.io/"), tap)
    patient.reload()
    expect(consultation).to_have_attribute("data-status", "active")
    expect(chat_bodies(patient)).to_have_count(2)

    # Read receipts: the doctor's console shows that the patient has read his message.
    expect(card.locator("[data-testid=chat-message][data-read=true]")).to_have_count(1)
    expect(card.get_by_test_id("message-read")).to_have_text(["Read"])

    # Typing: the doctor sees the patient typing, until her message arrives.
    patient.get_by_test_id("chat-input").fill("No fever")
    expect(card.get_by_test_id("chat-typing")).to_have_text(f"{PATIENT} is typing…")

    # The server stores a message but its ack is lost; she reloads while it shows "Sending…".
    # Back from the reload, the page sends it again with the same client id: it shows once.
    tap.lose_ack = "No fever"
    patient.get_by_test_id("chat-send").click()
    expect(chat_bodies(card)).to_have_count(3)
    expect(card.get_by_test_id("chat-typing")).to_be_hidden()
    expect(patient.get_by_test_id("chat-pending")).to_have_count(1)
    patient.reload()
    expect(chat_bodies(patient)).to_have_count(3)
    expect(patient.get_by_test_id("chat-pending")).to_have_count(0)

    # A message lost on its way to the server: still in the page's outbox after a reload,
    # then sent and stored once.
    tap.lose_send = "Only a cough"
    say(patient, "Only a cough.")
    expect(patient.get_by_test_id("chat-pending")).to_have_count(1)
    patient.reload()
    expect(chat_bodies(patient)).to_have_count(4)
    expect(patient.get_by_test_id("chat-pending")).to_have_count(0)
    assert len(tap.lost) == 3  # an ack, its echo, a message

    # The connection drops and does not come back for a while: the page says so, keeps what
    # she writes, and sends it once it is back.
    tap.refuse = True
    tap.cut()
    expect(patient.get_by_test_id("connection")).to_have_attribute("data-state", "connecting")
    expect(patient.get_by_test_id("chat-panel")).to_have_attribute(
        "data-connection", "reconnecting"
    )
    expect(patient.get_by_test_id("chat-status")).to_contain_text("Reconnecting")
    say(patient, "Are you still there?")
    expect(patient.get_by_test_id("chat-pending")).to_contain_text("Waiting for the connection")
    tap.refuse = False
    expect(patient.get_by_test_id("chat-panel")).to_have_attribute(
        "data-connection", "online", timeout=15_000
    )
    so_far = [
        "Hello doctor, I have had a sore throat since Monday.",
        "Hello Anna. Any fever?",
        "No fever",
        "Only a cough.",
        "Are you still there?",
    ]
    for page in (patient, doctor):
        expect(chat_bodies(page)).to_have_text(so_far)
    expect(patient.get_by_test_id("chat-pending")).to_have_count(0)
    expect(patient.get_by_test_id("chat-status")).to_be_hidden()

    # Markup in a message is shown as literal text on both pages, never interpreted.
    say(patient, HOSTILE)
    say(patient, "38.2 °C last night.")
    expected = [*so_far, HOSTILE, "38.2 °C last night."]
    for page in (patient, doctor):
        expect(chat_bodies(page)).to_have_text(expected)
        expect(page.locator("[data-testid=chat-transcript] :is(img, b)")).to_have_count(0)

    # The doctor writes a recommendation and ends the consultation.
    card.get_by_label("Recommendation for the patient's record").fill(RECOMMENDATION)
    card.get_by_test_id("save-recommendation").click()
    expect(card.get_by_test_id("saved-recommendation")).to_contain_text(RECOMMENDATION)
    card.get_by_test_id("end-consultation").click()
    expect(card).to_have_attribute("data-status", "ended")
    expect(card.get_by_test_id("chat-input")).to_be_hidden()

    # The patient sees that it ended, and her record shows it with transcript and recommendation.
    expect(consultation).to_have_attribute("data-status", "ended")
    expect(patient.get_by_test_id("consultation-status")).to_contain_text("has ended")
    expect(patient.get_by_test_id("chat-input")).to_be_hidden()
    entry = patient.get_by_test_id("record-entry")
    expect(entry).to_have_count(1)
    expect(entry).to_have_attribute("data-status", "ended")
    expect(entry).to_contain_text("Internal medicine")
    expect(entry).to_contain_text(DOCTOR)
    entry.get_by_test_id("record-transcript-toggle").click()
    expect(entry.get_by_test_id("message-body")).to_have_text(expected)
    # The recommendation is an item of the timeline of its own.
    advice = patient.get_by_test_id("record").get_by_test_id("record-recommendation")
    expect(advice).to_have_count(1)
    expect(advice).to_contain_text(RECOMMENDATION)
    expect(patient.locator("[data-testid=record] :is(img, b)")).to_have_count(0)
    expect(patient.get_by_test_id("start")).to_be_enabled()
    expect(patient.get_by_test_id("error")).to_be_hidden()
    expect(doctor.get_by_test_id("error")).to_be_hidden()

    assert_no_problems(doctor_problems, patient_problems)
