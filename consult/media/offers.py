"""Offers from the pages: read, checked, and the codec preferences the answers are built from.

An offer is checked completely here, before any peer exists for it: aiortc accepts some
broken offers in ``setRemoteDescription`` and only fails later, in a task nobody awaits (no
``a=fingerprint``: the DTLS start asserts), which would leave a peer and its UDP sockets
behind. So every m-line that is not rejected (port 0) must carry what a connection needs:
ICE credentials, a DTLS setup role and a fingerprint of an algorithm aiortc checks, RTCP
multiplexing; and every audio or video m-line a codec of the call's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import MediaDescription, SessionDescription

from consult.errors import Invalid

KINDS = ("audio", "video")
MAX_SDP = 64_000
# Codecs both legs must use, in order of preference (plus RTX for video retransmissions).
DEFAULT_CODECS: Mapping[str, tuple[str, ...]] = {
    "audio": ("audio/opus",),
    "video": ("video/VP8",),
}


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


def parse_offer(
    sdp: str, type_: str, codecs: Mapping[str, tuple[str, ...]] = DEFAULT_CODECS
) -> Offer:
    """The offer, read and checked completely (see the module docstring), or ``Invalid``."""
    if type_ != "offer":
        raise Invalid("Only an offer can be sent to the call.", code="media_not_an_offer")
    if not isinstance(sdp, str) or not sdp.strip() or len(sdp) > MAX_SDP:
        raise Invalid(
            f"The offer's SDP is empty or longer than {MAX_SDP:,} characters.",
            code="media_bad_sdp",
        )
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise Invalid("The offer's SDP could not be read.", code="media_bad_sdp") from exc
    if not any(m.kind in KINDS and m.port != 0 for m in parsed.media):
        raise Invalid("The offer has no audio or video.", code="media_no_media")
    live = [m for m in parsed.media if m.port != 0]
    for media in live:
        problem = _transport_problem(media)
        if problem is not None:
            raise Invalid(f"The offer's {media.kind} m-line {problem}.", code="media_bad_sdp")
    if not any(m.ice_candidates for m in live):
        # No trickle ICE: an offer without candidates could never connect.
        raise Invalid(
            "The offer has no ICE candidate (send it once gathering is complete).",
            code="media_bad_sdp",
        )
    for media in live:
        if media.kind in KINDS and not _has_codec(media, codecs[media.kind]):
            raise Invalid(
                f"The offer's {media.kind} has no codec of the call's "
                f"({', '.join(codecs[media.kind])}).",
                code="media_offer_rejected",
            )
    return Offer(sdp, parsed)


def _transport_problem(media: MediaDescription) -> str | None:
    """What the m-line lacks to connect (aiortc would fail on it later), or None."""
    mid = media.rtp.muxId
    if not mid:
        return "has no a=mid"
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        return f"{mid} has no a=ice-ufrag or a=ice-pwd"
    if media.dtls is None:
        return f"{mid} has no a=setup"
    if not any(f.algorithm.lower() in X509_DIGEST_ALGORITHMS for f in media.dtls.fingerprints):
        return f"{mid} has no a=fingerprint of {', '.join(X509_DIGEST_ALGORITHMS)}"
    if media.kind in KINDS and not media.rtcp_mux:
        return f"{mid} has no a=rtcp-mux"
    return None


def _has_codec(media: MediaDescription, mimes: Iterable[str]) -> bool:
    wanted = {m.lower() for m in mimes}
    return any(c.mimeType.lower() in wanted for c in media.rtp.codecs)


def ice_ufrag(description: SessionDescription | None) -> str | None:
    if description is None:
        return None
    for media in description.media:
        if media.ice is not None and media.ice.usernameFragment:
            return str(media.ice.usernameFragment)
    return None
