"""The chat panel (web/common/chat.js) in a real browser, driven through a stand-in socket: what
it costs to catch up on a long transcript, and that a panel taken down lets go of the page."""

from __future__ import annotations

from tests.e2e.helpers import STAND_IN_PANEL, OpenPage, assert_no_problems

# Builds a panel for consultation 7 between patient 1 (me) and doctor 2, on a socket that
# answers chat:resume with `count` messages, and counts how often the transcript is redrawn
# and which document listeners the panel holds.
SETUP = (
    """async (count) => {
  const { ChatPanel } = await import("/static/chat.js");
  const held = new Set();
  const add = document.addEventListener.bind(document);
  const remove = document.removeEventListener.bind(document);
  document.addEventListener = (type, fn, ...rest) => { held.add(fn); add(type, fn, ...rest); };
  document.removeEventListener = (type, fn, ...rest) => {
    held.delete(fn);
    remove(type, fn, ...rest);
  };
  const messages = Array.from({ length: count }, (_, i) => ({
    id: i + 1, consultation_id: 7, seq: i + 1, sender_id: i % 2 ? 2 : 1,
    sender_role: i % 2 ? "doctor" : "patient", client_id: `c${i}`, body: `message ${i + 1}`,
    created_at: "2026-11-29T12:00:00Z",
  }));
  const read = { patient_read_seq: count, doctor_read_seq: count };
  const answers = {
    "chat:resume": { ok: true, data: { consultation_id: 7, status: "active", messages,
                                       last_seq: count, read } },
    "chat:read": { ok: true, data: { consultation_id: 7, reader_id: 1, reader_role: "patient",
                                     read_seq: count, read } },
  };
  const socket = {
    connected: true,
    timeout() { return this; },
    async emitWithAck(event) { return answers[event]; },
    emit() {},
  };
"""
    + STAND_IN_PANEL
    + """  document.body.append(panel.element);
  let draws = 0;
  const replace = panel.list.replaceChildren.bind(panel.list);
  panel.list.replaceChildren = (...nodes) => { draws += 1; replace(...nodes); };
  await panel.catchUp();
  const shown = panel.list.querySelectorAll("[data-testid=chat-message]").length;
  const listening = held.size;
  panel.destroy();
  return { draws, shown, listening, afterDestroy: held.size };
}"""
)


def test_catching_up_draws_the_transcript_once_and_destroy_lets_go(open_page: OpenPage) -> None:
    page, problems = open_page("patient")
    page.goto("/patient/")
    got = page.evaluate(SETUP, 300)
    assert got["shown"] == 300
    # Drawn once for the whole catch-up, not once per message (quadratic in the length).
    assert got["draws"] == 1, got
    # Its visibilitychange listener (receipts when the tab is shown again) goes with it.
    assert got["listening"] == 1 and got["afterDestroy"] == 0, got
    assert_no_problems(problems)
