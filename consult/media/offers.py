"""Offers from the pages: read, checked, and the codec preferences the answers are built from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription

from consult.errors import Invalid

KINDS = ("audio", "video")
MAX_SDP = 64_000


def codec_preferences(kind: str, mimes: Iterable[str]) -> list[RTCRtpCodecCapability]:
    wanted = [m.lower() for m in mimes]
    available = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for m in wanted for c in available if c.mimeType.lower() == m]
    if kind == "video":
        chosen += [c for c in available if c.mimeType.lower() == "video/rtx"]
    if not chosen:
        raise ValueError(f"none of {list(mimes)} is supported by aiortc for {kind}")
    return chosen


@dataclass(frozen=True)
class Offer:
    """A page's offer, checked and parsed once: its SDP as sent and what it describes."""

    sdp: str
    description: SessionDescription


def parse_offer(sdp: str, type_: str) -> Offer:
    if type_ != "offer":
        raise Invalid("Only an offer can be sent to the call.", code="media_not_an_offer")
    if not isinstance(sdp, str) or not sdp.strip() or len(sdp) > MAX_SDP:
        raise Invalid("The offer's SDP is empty or too long.", code="media_bad_sdp")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise Invalid("The offer's SDP could not be read.", code="media_bad_sdp") from exc
    if not any(m.kind in KINDS for m in parsed.media):
        raise Invalid("The offer has no audio or video.", code="media_no_media")
    return Offer(sdp, parsed)


def ice_ufrag(description: SessionDescription | None) -> str | None:
    if description is None:
        return None
    for media in description.media:
        if media.ice is not None and media.ice.usernameFragment:
            return str(media.ice.usernameFragment)
    return None
