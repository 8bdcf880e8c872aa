"""What the pages do when the server says its database is unavailable for a moment (503
``database_unavailable``, docs/operations.md "When the database is down"): the chat keeps the
message, says why it waits, and sends it again with the same client id; the live connection
tries again instead of asking the user to log in; a load balancer's own bare 503 reads as a
sentence.

The pages run in the real browser; the server's side is stood in for (a socket object that
answers as the server does during an outage, a route answered by the test) because the real
outage (tests/integration/test_database_outage.py) cannot be timed against a page's clicks.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import STAND_IN_PANEL, OpenPage, assert_no_problems

# A chat panel for consultation 7 (patient 1, doctor 2) on a socket whose first chat:send is
# refused as the server refuses it while its database is down, and whose next one is stored.
CHAT = (
    """async () => {
  const { ChatPanel } = await import("/static/chat.js");
  const sends = [];
  const outage = { ok: false, error: { code: "database_unavailable",
    message: "the service is briefly unavailable", details: { retry_after: 0.5 } } };
  const socket = {
    connected: true,
    timeout() { return this; },
    async emitWithAck(event, payload) {
      if (event !== "chat:send") return { ok: true, data: null };
      sends.push(payload.client_id);
      if (sends.length === 1) return outage;
      return { ok: true, data: { id: 1, consultation_id: 7, seq: 1, sender_id: 1,
        sender_role: "patient", client_id: payload.client_id, body: payload.body,
        created_at: "2026-11-29T12:00:00Z", document: null } };
    },
    emit() {},
  };
"""
    + STAND_IN_PANEL
    + """  document.body.prepend(panel.element);
  window.chatTest = { sends, panel };
}"""
)


def test_a_chat_message_refused_in_an_outage_waits_and_is_sent_again(open_page: OpenPage) -> None:
    page, problems = open_page("patient")
    page.goto("/patient/")
    page.evaluate(CHAT)
    page.get_by_test_id("chat-input").fill("Are you there?")
    page.get_by_test_id("chat-send").click()
    status = page.get_by_test_id("chat-status")
    expect(status).to_have_text(
        "The service is briefly unavailable; your message will be sent when it is back."
    )
    expect(page.get_by_test_id("message-body")).to_have_text(["Are you there?"])
    expect(status).to_be_hidden()
    sends = page.evaluate("window.chatTest.sends")
    assert len(sends) == 2 and sends[0] == sends[1], "sent again with the same client id"
    assert page.evaluate("window.chatTest.panel.outbox.length") == 0
    assert_no_problems(problems)


# The connection indicator on a socket refused at connect: the server's connect_error for a
# database outage, then for an expired session.
INDICATOR = """async (code) => {
  const { bindConnectionIndicator } = await import("/static/api.js");
  const node = document.createElement("span");
  document.body.prepend(node);
  const handlers = {};
  const socket = {
    active: false,
    connects: 0,
    on(event, fn) { handlers[event] = fn; },
    connect() { this.connects += 1; },
  };
  const refused = [];
  bindConnectionIndicator(socket, node, (err) => refused.push(err.data.code));
  handlers.connect_error({ message: "refused", data: { code, message: "refused",
                                                      details: { retry_after: 0.3 } } });
  const shown = node.textContent;
  await new Promise((resolve) => setTimeout(resolve, 600));
  return { shown, connects: socket.connects, refused };
}"""


def test_the_live_connection_retries_after_a_database_outage_refusal(open_page: OpenPage) -> None:
    page, problems = open_page("patient")
    page.goto("/patient/")
    outage = page.evaluate(INDICATOR, "database_unavailable")
    assert outage == {"shown": "Reconnecting…", "connects": 1, "refused": []}
    expired = page.evaluate(INDICATOR, "session_expired")
    assert expired == {"shown": "Offline", "connects": 0, "refused": ["session_expired"]}
    assert_no_problems(problems)


def test_a_load_balancers_bare_503_reads_as_a_sentence(open_page: OpenPage) -> None:
    page, problems = open_page("patient")
    page.goto("/patient/")
    problems.expect_error("503", "the stand-in balancer answers 503 on purpose")
    page.route(
        "**/api/me",
        lambda route: route.fulfill(status=503, content_type="text/html", body="<h1>503</h1>"),
    )
    message = page.evaluate(
        """async () => {
        const { api } = await import("/static/api.js");
        try { await api("GET", "/api/me"); } catch (err) { return [err.code, err.message]; }
    }"""
    )
    assert message == [
        "http_503",
        "The service is briefly unavailable. Please try again in a moment.",
    ]
    assert_no_problems(problems)
