"""The form switch rules: chat, voice and video, and when the other side must agree.

Pure domain: no storage, no transport. Going up to video shows the other participant's camera
(and theirs to you), so it needs their consent; going down (video -> voice -> chat) or chat ->
voice does not: either side may always stop showing more of themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consult.domain import Form
from consult.errors import Conflict, NotAllowed

CALL_FORMS = (Form.VOICE, Form.VIDEO)


def has_call(form: Form) -> bool:
    """Whether the consultation has media (a call room) in this form."""
    return form in CALL_FORMS


def media_kinds(form: Form) -> frozenset[str]:
    """The kinds of media the call relays in ``form`` (none in a chat)."""
    return {
        Form.CHAT: frozenset[str](),
        Form.VOICE: frozenset({"audio"}),
        Form.VIDEO: frozenset({"audio", "video"}),
    }[form]


def needs_consent(current: Form, wanted: Form) -> bool:
    return wanted is Form.VIDEO and current is not Form.VIDEO


@dataclass(frozen=True)
class SwitchRequest:
    """A pending request to switch to ``form``, waiting for ``to_user``'s answer (stored in
    ``form_switch_requests``, where every node reads it)."""

    consultation_id: int
    form: Form
    previous: Form
    requested_by: int
    to_user: int
    at: datetime


def check_answerable(request: SwitchRequest | None, user_id: int) -> SwitchRequest:
    """The request ``user_id`` may answer now: there is one, and it was made to them (at most
    one is open per consultation; a newer request replaced any older one)."""
    if request is None:
        raise Conflict("There is no form switch to answer.", code="form_no_request")
    if request.to_user != user_id:
        raise NotAllowed(
            "Only the other participant answers a form switch request.",
            code="form_own_request",
        )
    return request
