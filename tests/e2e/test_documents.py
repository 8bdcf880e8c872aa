"""Documents and follow-up questions in two browsers: the patient uploads a document (a bad file
is refused with a clear message), shares it into the consultation's chat, and the doctor opens
it from the console; her later uploads and deletions reach the console live, and a deleted
document the console missed says so when opened; after the visit the patient asks a follow-up
question and the doctor's answer reaches her page live."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.helpers import (
    OpenPage,
    assert_no_problems,
    chat_bodies,
    go_online,
    log_in,
    take_patient,
)
from tests.support import pdf, png

PATIENT = "Anna Kowalska"
PDF = pdf()
DESCRIPTION = "Rash on my left arm, photographed on Sunday"


def upload(page: Page, name: str, mime: str, content: bytes, description: str) -> None:
    page.get_by_test_id("document-file").set_input_files(
        {"name": name, "mimeType": mime, "buffer": content}
    )
    page.get_by_label("Description for the doctor").fill(description)
    page.get_by_test_id("document-upload").click()


@pytest.mark.e2e
def test_the_patient_uploads_and_shares_a_document_and_the_doctor_opens_it(
    open_page: OpenPage, tmp_path: Path
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)

    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    expect(patient.get_by_test_id("documents-empty")).to_be_visible()

    # An HTML page named .png is refused with a clear message, and nothing is listed.
    patient_problems.expect_error(
        r"status of 415 .* @ .*/api/documents$", "Chromium logs the refused upload's 415"
    )
    upload(patient, "photo.png", "image/png", b"<html><script>alert(1)</script></html>", "x")
    expect(patient.get_by_test_id("documents-error")).to_contain_text(
        "Only JPEG, PNG and PDF files are accepted, and this file"
    )
    expect(patient.get_by_test_id("document")).to_have_count(0)

    # A real PNG is stored and listed with its description.
    image = png(4, 4, b"\xd0\x40\x40")
    upload(patient, "rash.png", "image/png", image, DESCRIPTION)
    listed = patient.get_by_test_id("document")
    expect(listed).to_have_count(1)
    expect(listed.get_by_test_id("document-link")).to_have_text("rash.png")
    expect(listed.get_by_test_id("document-description")).to_have_text(DESCRIPTION)
    expect(patient.get_by_test_id("documents-error")).to_be_hidden()
    # Sharing needs a running consultation.
    expect(listed.get_by_test_id("document-share")).to_be_disabled()

    # She starts a chat consultation; the doctor takes her and sees her documents.
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("form-chat").check()
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    expect(card.get_by_test_id("patient-name")).to_have_text(PATIENT)
    take_patient(card)
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "active")
    in_console = card.get_by_test_id("patient-documents").get_by_test_id("document-link")
    expect(in_console).to_have_text("rash.png")

    # She shares it into the chat: it appears on both pages, with the description.
    listed.get_by_test_id("document-share").click()
    expect(listed.get_by_test_id("document-share")).to_have_text("Shared")
    shared = card.get_by_test_id("chat-transcript").get_by_test_id("document-ref")
    expect(shared).to_have_count(1)
    expect(shared.get_by_test_id("document-description")).to_have_text(DESCRIPTION)
    expect(chat_bodies(card)).to_have_text(["Shared a document: rash.png"])
    expect(patient.get_by_test_id("chat-transcript").get_by_test_id("document-link")).to_have_text(
        "rash.png"
    )

    # The doctor opens it from the chat: the file the patient uploaded, as a download.
    with doctor.expect_download() as download_info:
        shared.get_by_test_id("document-link").click()
    download = download_info.value
    assert download.suggested_filename == "rash.png"
    saved = tmp_path / "opened.png"
    download.save_as(saved)
    assert saved.read_bytes() == image

    # A second upload during the visit reaches the console's list at once.
    upload(patient, "ecg.pdf", "application/pdf", PDF, "ECG from the pharmacy")
    expect(listed).to_have_count(2)
    console_list = card.get_by_test_id("patient-documents").get_by_test_id("document-link")
    expect(console_list).to_have_text(["rash.png", "ecg.pdf"])

    # She deletes the shared one; without a reload the console's list drops it and both chats
    # keep saying it was shared, now as deleted (no link left to a file that is gone), as the
    # transcript says after a reload.
    listed.filter(has_text="rash.png").get_by_test_id("document-delete").click()
    expect(listed).to_have_count(1)
    expect(console_list).to_have_text(["ecg.pdf"])
    for chat in (card, patient):
        transcript = chat.get_by_test_id("chat-transcript")
        expect(transcript.get_by_test_id("document-deleted")).to_have_text(
            "rash.png (deleted by the patient)"
        )
        expect(transcript.get_by_test_id("document-link")).to_have_count(0)
    listed.get_by_test_id("document-delete").click()
    expect(patient.get_by_test_id("document")).to_have_count(0)
    expect(patient.get_by_test_id("documents-empty")).to_be_visible()
    expect(console_list).to_have_count(0)
    expect(card.get_by_text("The patient has uploaded no documents.")).to_be_visible()
    doctor.reload()
    card = doctor.get_by_test_id("consultation-card")
    expect(card.get_by_test_id("chat-transcript").get_by_test_id("document-deleted")).to_have_text(
        "rash.png (deleted by the patient)"
    )
    expect(card.get_by_text("The patient has uploaded no documents.")).to_be_visible()

    assert_no_problems(doctor_problems, patient_problems)


def without_document_deleted(ws: WebSocketRoute) -> None:
    """Relays the page's Socket.IO connection, but drops the "document:deleted" events (as a
    connection that was down at that moment would miss them)."""
    server = ws.connect_to_server()
    ws.on_message(server.send)
    server.on_message(lambda frame: None if '"document:deleted"' in str(frame) else ws.send(frame))


@pytest.mark.e2e
def test_a_document_deleted_unseen_says_so_when_the_doctor_opens_it(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    doctor.route_web_socket(re.compile(r".*/socket\.io/.*"), without_document_deleted)
    go_online(doctor)
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    upload(patient, "rash.png", "image/png", png(), DESCRIPTION)
    listed = patient.get_by_test_id("document")
    expect(listed).to_have_count(1)
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)
    listed.get_by_test_id("document-share").click()
    shared = card.get_by_test_id("chat-transcript").get_by_test_id("document-link")
    expect(shared).to_have_text("rash.png")

    # She deletes it; the console misses the event and still offers the link.
    listed.get_by_test_id("document-delete").click()
    expect(patient.get_by_test_id("documents-empty")).to_be_visible()
    expect(shared).to_have_text("rash.png")

    # Opening it: the server's 404 document_deleted becomes a sentence, and the link goes.
    doctor_problems.expect_error(
        r"status of 404 .* @ .*/api/documents/\d+/content$",
        "Chromium logs the 404 of the deleted document the doctor opens",
    )
    shared.click()
    transcript = card.get_by_test_id("chat-transcript")
    expect(transcript.get_by_test_id("document-error")).to_have_text(
        "Cannot open rash.png: the patient has deleted this document."
    )
    expect(transcript.get_by_test_id("document-deleted")).to_contain_text(
        "rash.png (deleted by the patient)"
    )
    expect(transcript.get_by_test_id("document-link")).to_have_count(0)
    assert_no_problems(doctor_problems, patient_problems)


@pytest.mark.e2e
def test_a_follow_up_question_and_its_answer_live(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    expect(patient.get_by_test_id("follow-up-form")).to_be_hidden()

    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)
    card.get_by_test_id("end-consultation").click()
    expect(patient.get_by_test_id("consultation")).to_have_attribute("data-status", "ended")

    # After the visit she asks Dr House a question; it lands in his inbox at once.
    expect(patient.get_by_test_id("follow-up-form")).to_be_visible()
    expect(patient.get_by_label("About the consultation")).to_contain_text("Dr Gregory House")
    question = "The rash is fading. Should I still use the cream?"
    patient.get_by_label("Your question").fill(question)
    patient.get_by_test_id("follow-up-send").click()
    asked = patient.get_by_test_id("follow-up")
    expect(asked.get_by_test_id("follow-up-question")).to_have_text(question)
    expect(asked).to_have_attribute("data-answered", "no")

    in_inbox = doctor.get_by_test_id("inbox").get_by_test_id("follow-up")
    expect(in_inbox.get_by_test_id("follow-up-question")).to_have_text(question)
    expect(in_inbox).to_contain_text(PATIENT)
    answer = "Yes, for three more days, then stop."
    in_inbox.get_by_label("Your answer").fill(answer)
    in_inbox.get_by_test_id("follow-up-answer-send").click()
    expect(doctor.get_by_test_id("inbox-empty")).to_be_visible()

    # The answer reaches her page live, without a reload.
    expect(asked).to_have_attribute("data-answered", "yes")
    expect(asked.get_by_test_id("follow-up-answer")).to_have_text(answer)

    assert_no_problems(doctor_problems, patient_problems)
