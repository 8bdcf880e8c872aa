"""The form switch rules: only turning video on waits for the other side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consult.calls.forms import SwitchRequest, check_answerable, has_call, needs_consent
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


def test_only_the_addressee_answers_an_open_request() -> None:
    request = SwitchRequest(1, Form.VIDEO, Form.VOICE, requested_by=20, to_user=10, at=NOW)
    with pytest.raises(NotAllowed):
        check_answerable(request, 20)  # the requester may not answer
    assert check_answerable(request, 10) == request
    with pytest.raises(Conflict):
        check_answerable(None, 10)  # nothing open (answered already, or never asked)
