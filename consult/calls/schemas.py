"""Socket.IO payloads of calls (in and out); docs/protocol.md describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from consult.domain import Form
from consult.media.offers import MAX_SDP
from consult.schemas import Id, In, Out


class CallIn(In):
    consultation_id: Id


class OfferIn(In):
    consultation_id: Id
    # The page's complete offer (gathering finished: no trickle ICE). Its length and type are
    # judged by the media layer (parse_offer), so they get the media codes the docs name
    # (media_bad_sdp, media_not_an_offer) rather than invalid_payload.
    sdp: str = Field(description=f"At most {MAX_SDP:,} characters.")
    type: str = Field(default="offer", description='"offer"; anything else is refused.')


class FormIn(In):
    consultation_id: Id
    form: Form


class FormAnswerIn(In):
    consultation_id: Id
    accept: bool


class RecordConsentIn(In):
    consultation_id: Id
    consent: bool


class AnswerOut(Out):
    consultation_id: int
    sdp: str
    type: str


class FormRequestOut(Out):
    consultation_id: int
    form: Form
    previous: Form
    requested_by: int
    to_user: int
    at: datetime


class FormChangeOut(Out):
    consultation_id: int
    form: Form
    previous: Form
    requested_by: int | None
    at: datetime
    declined: bool = Field(
        default=False, description="True: the other side declined; the form did not change."
    )


class RecordingStateOut(Out):
    consultation_id: int
    patient_consent: bool
    doctor_consent: bool
    recording: bool = Field(description="A recording of this call is being written now.")
    recording_id: int | None = None


class CallStateOut(Out):
    """What the page needs on (re)load: the form now, ICE servers, a pending request, recording."""

    consultation_id: int
    form: Form
    ice_servers: list[dict[str, Any]] = Field(
        description="For RTCPeerConnection({iceServers}): STUN, and TURN with short-lived "
        "credentials for this user."
    )
    pending: FormRequestOut | None
    recording: RecordingStateOut
