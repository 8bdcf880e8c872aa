"""The form switch rules: only turning video on waits for the other side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consult.calls.forms import PendingSwitches, SwitchRequest, has_call, needs_consent
from consult.domain import Form
from consult.errors import Conflict, NotAllowed

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "wanted", "consent"),
    [
        (Form.CHAT, Form.VIDEO, True),
        (Form.VOICE, Form.VIDEO, True),
        (Form.CHAT, Form.VOICE, False),
        (Form.VIDEO, Form.VOICE, False),
        (Form.VIDEO, Form.CHAT, False),
        (Form.VOICE, Form.CHAT, False),
    ],
)
def test_only_turning_video_on_needs_consent(current: Form, wanted: Form, consent: bool) -> None:
    assert needs_consent(current, wanted) is consent


def test_a_call_exists_in_voice_and_video_only() -> None:
    assert [f for f in Form if has_call(f)] == [Form.VOICE, Form.VIDEO]


def test_a_request_is_answered_once_by_its_addressee_and_a_newer_one_replaces_it() -> None:
    switches = PendingSwitches()
    switches.request(SwitchRequest(1, Form.VIDEO, Form.CHAT, requested_by=10, to_user=20, at=NOW))
    newer = switches.request(
        SwitchRequest(1, Form.VIDEO, Form.VOICE, requested_by=20, to_user=10, at=NOW)
    )
    with pytest.raises(NotAllowed):
        switches.take_for_answer(1, 20)  # the requester may not answer
    assert switches.take_for_answer(1, 10) == newer
    with pytest.raises(Conflict):
        switches.take_for_answer(1, 10)  # answered already
    assert switches.get(2) is None
