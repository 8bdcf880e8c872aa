"""Follow-up questions sent twice from the pages: a double click or a second submit while the
first is in flight sends nothing more, and a retry after a response that never arrived stores
no second question, because the page sends one client id per question typed and reuses it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.helpers import OpenPage, assert_no_problems, go_online, log_in, take_patient

PATIENT = "Anna Kowalska"


def wait_until(page: Page, held: list[Any], count: int) -> None:
    """Lets the page run until ``count`` requests have been intercepted."""
    for _ in range(200):
        if len(held) >= count:
            return
        page.wait_for_timeout(25)
    raise AssertionError(f"{len(held)} requests intercepted, expected {count}")


def lose_response(route: Route) -> None:
    """The request reaches the server (which stores it) but its response never reaches the
    page, as when the connection drops at the wrong moment."""
    route.fetch()
    route.abort("connectionreset")


@pytest.mark.e2e
def test_a_question_and_an_answer_sent_twice_are_stored_once(open_page: OpenPage) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    patient.get_by_label("Specialist").select_option("internal-medicine")
    patient.get_by_test_id("start").click()
    card = doctor.get_by_test_id("consultation-card")
    take_patient(card)
    card.get_by_test_id("end-consultation").click()
    expect(patient.get_by_test_id("follow-up-form")).to_be_visible()

    # Hold the question's requests to see what the page does meanwhile.
    asks: list[Route] = []
    patient.route("**/api/consultations/*/follow-ups", lambda route: asks.append(route))
    question = "Can I go back to the gym while the rash lasts?"
    patient.get_by_label("Your question").fill(question)
    send = patient.get_by_test_id("follow-up-send")
    send.dblclick()
    wait_until(patient, asks, 1)
    # In flight: the button is disabled, and another submit (e.g. from the keyboard) is ignored.
    expect(send).to_be_disabled()
    patient.locator("#follow-up-form").evaluate("form => form.requestSubmit()")
    patient.wait_for_timeout(200)
    assert len(asks) == 1

    # The server stores it, but the answer is lost: the page says so and lets her send again.
    patient_problems.expect_error(
        r"ERR_CONNECTION_RESET @ .*/api/consultations/\d+/follow-ups$",
        "the test drops this answer on purpose (lose_response); Chromium logs it",
    )
    lose_response(asks[0])
    expect(patient.get_by_test_id("follow-ups-error")).to_contain_text("cannot be reached")
    expect(send).to_be_enabled()
    expect(patient.get_by_label("Your question")).to_have_value(question)
    send.click()
    wait_until(patient, asks, 2)
    asks[1].continue_()
    mine = patient.get_by_test_id("follow-up")
    expect(mine).to_have_count(1)
    expect(mine.get_by_test_id("follow-up-question")).to_have_text(question)
    expect(patient.get_by_test_id("follow-ups-error")).to_be_hidden()
    first, again = (route.request.post_data_json for route in asks)
    assert first == again and first["client_id"], (first, again)

    # One question in the doctor's inbox, and over the API.
    in_inbox = doctor.get_by_test_id("inbox").get_by_test_id("follow-up")
    expect(in_inbox).to_have_count(1)
    expect(in_inbox).to_contain_text(PATIENT)
    stored = patient.request.get("/api/follow-ups").json()["follow_ups"]
    assert [f["question"] for f in stored] == [question]

    # The doctor's answer, double-clicked: one request while it is in flight.
    answers: list[Route] = []
    doctor.route("**/api/follow-ups/*/answer", lambda route: answers.append(route))
    answer = "Light training is fine; avoid the sauna for a week."
    in_inbox.get_by_label("Your answer").fill(answer)
    answer_send = in_inbox.get_by_test_id("follow-up-answer-send")
    answer_send.dblclick()
    wait_until(doctor, answers, 1)
    expect(answer_send).to_be_disabled()
    doctor.wait_for_timeout(200)
    assert len(answers) == 1
    with doctor.expect_response("**/api/follow-ups/*/answer") as response:
        answers[0].continue_()
    assert response.value.status == 200
    assert answers[0].request.post_data_json["client_id"]
    expect(doctor.get_by_test_id("inbox-empty")).to_be_visible()

    expect(mine).to_have_attribute("data-answered", "yes")
    expect(mine.get_by_test_id("follow-up-answer")).to_have_text(answer)
    stored = patient.request.get("/api/follow-ups").json()["follow_ups"]
    assert [(f["question"], f["answer"]) for f in stored] == [(question, answer)]

    assert_no_problems(doctor_problems, patient_problems)
