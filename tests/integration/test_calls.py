"""Calls in the product over real Socket.IO and real UDP on loopback,
on the first configured backend (the relay does not differ by backend).

The pages are played by aiortc client peers (what a browser does: one RTCPeerConnection with
the server per participant, a complete offer over ``call:offer``). Covered: a video call
matched from the queue, media both ways; switching forms with the other side's consent and the
timeline in the record; recording only with both consents, its file in the record; the quality
push to the doctor only; "reconnecting" when a leg rejoins; a recording a dead server left
"recording" finished when the call's room opens again; bad input (malformed SDP, another
consultation's call, an offer after hang-up) refused with a clear error and nothing leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestServer
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from sqlalchemy.ext.asyncio import create_async_engine

from consult.calls import repository as calls_repository
from consult.calls.service import CallService
from consult.http.routing import SERVICES
from consult.media.call import CallRoom
from consult.storage import tables as t
from tests.integration.test_scheduler import parse_metrics, sample
from tests.support import (
    ApiClient,
    SocketClient,
    loopback_only,
    rows,
    start_and_accept,
    wait_for,
)

# The media relay and the calls' rules do not differ by backend; what a call writes (the forms
# used, a recording's row) is read back on both by test_recording_playback.py.
pytestmark = pytest.mark.one_backend

IM = "internal-medicine"


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)


class Peer:
    """One participant's page: a peer with the server, counting what arrives."""

    def __init__(self, ws: SocketClient, cid: int, *, video: bool = True) -> None:
        self.ws, self.cid = ws, cid
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.samples = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.addTrack(AudioStreamTrack())
        if video:
            self.pc.addTrack(VideoStreamTrack())
        self.pc.on("track", lambda track: self.tasks.append(asyncio.create_task(self._eat(track))))

    async def _eat(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.frames += 1
                else:
                    self.samples += 1

    async def offer(self) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.ws.emit(
            "call:offer",
            {"consultation_id": self.cid, "sdp": self.pc.localDescription.sdp, "type": "offer"},
        )
        if ack["ok"]:
            answer = ack["data"]
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return ack

    async def add_video(self) -> dict[str, Any]:
        self.pc.addTrack(VideoStreamTrack())
        return await self.offer()

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.close()


def calls_of(server: TestServer) -> CallService:
    return server.app[SERVICES].calls


async def video_consultation(
    api: Any, sockets: Any, form: str = "video"
) -> tuple[ApiClient, SocketClient, ApiClient, SocketClient, int]:
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    presence = {"specialties": [IM], "forms": ["chat", "voice", "video"]}
    assert (await doctor_ws.emit("presence:online", presence))["ok"]
    patient = await api("anna@demo.test")
    patient_ws = await sockets(patient.token)
    cid = await start_and_accept(patient, doctor_ws, IM, form)
    return doctor, doctor_ws, patient, patient_ws, cid


def error_code(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    return str(ack["error"]["code"])


async def test_a_video_call_from_the_queue_carries_media_both_ways_and_quality_to_the_doctor(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    config = await patient_ws.emit("call:config", {"consultation_id": cid})
    assert config["ok"], config
    assert config["data"]["form"] == "video" and config["data"]["pending"] is None
    assert config["data"]["recording"]["recording"] is False

    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"]
    assert (await house.offer())["ok"]
    await wait_for(lambda: anna.frames >= 20 and house.frames >= 20, 20, "video both ways")
    assert anna.samples > 0 and house.samples > 0
    # Both pages hear that the other side is connected.
    await patient_ws.until(
        "call:state", lambda s: s["user_id"] == doctor.user["id"] and s["state"] == "connected"
    )
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == patient.user["id"] and s["state"] == "connected"
    )

    # The doctor's console gets both legs' figures every ~2 s; the patient never does.
    # (A push taken just as a leg connects may count no packet yet: the first stats read can
    # precede the first frame's; a later push, ~2 s on, has them.)
    def video_in(leg: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in leg["streams"] if (s["kind"], s["direction"]) == ("video", "in"))

    quality = await doctor_ws.until(
        "call:quality",
        lambda q: all(
            leg["state"] == "connected" and video_in(leg)["packets"] > 0 for leg in q["legs"]
        ),
        timeout=12,
    )
    assert quality["consultation_id"] == cid
    assert {leg["role"] for leg in quality["legs"]} == {"patient", "doctor"}
    for leg in quality["legs"]:
        assert video_in(leg)["bitrate"] >= 0
    assert patient_ws.pending("call:quality") == 0

    # Hang-up: both pages are told, the room is gone, the consultation goes on as a chat.
    ack = await patient_ws.emit("call:hangup", {"consultation_id": cid})
    assert ack["ok"] and ack["data"]["form"] == "chat", ack
    change = await doctor_ws.next("call:form-changed")
    assert (change["previous"], change["form"]) == ("video", "chat")
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == patient.user["id"] and s["state"] == "closed"
    )
    assert calls_of(server).registry.resources()["peers"] == 0
    assert (
        await patient_ws.emit(
            "chat:send", {"consultation_id": cid, "client_id": "after-call", "body": "still here"}
        )
    )["ok"]


async def test_switching_forms_needs_consent_for_video_and_the_record_keeps_the_timeline(
    server: TestServer, database_url: str, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets, "chat")
    # No call in a chat: an offer is refused and creates nothing.
    anna = Peer(patient_ws, cid, video=False)
    peers.append(anna)
    assert error_code(await anna.offer()) == "media_no_call"
    assert calls_of(server).registry.resources()["rooms"] == 0

    # chat -> voice needs no consent.
    ack = await doctor_ws.emit("call:form", {"consultation_id": cid, "form": "voice"})
    assert ack["ok"] and ack["data"]["form"] == "voice", ack
    assert (await patient_ws.next("call:form-changed"))["form"] == "voice"
    house = Peer(doctor_ws, cid, video=False)
    peers.append(house)
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: anna.samples > 20 and house.samples > 20, 15, "voice both ways")
    assert anna.frames == 0 and house.frames == 0

    # voice -> video waits for the other side; a decline changes nothing.
    ack = await doctor_ws.emit("call:form", {"consultation_id": cid, "form": "video"})
    assert ack["ok"] and ack["data"]["to_user"] == patient.user["id"], ack
    request = await patient_ws.next("call:form-requested")
    assert (request["form"], request["requested_by"]) == ("video", doctor.user["id"])
    # Only the addressee answers.
    assert (
        error_code(
            await doctor_ws.emit("call:form-answer", {"consultation_id": cid, "accept": True})
        )
        == "form_own_request"
    )
    ack = await patient_ws.emit("call:form-answer", {"consultation_id": cid, "accept": False})
    assert ack["ok"] and ack["data"]["declined"] and ack["data"]["form"] == "voice", ack
    declined = await doctor_ws.until("call:form-changed", lambda c: c["declined"])
    assert (declined["form"], declined["previous"]) == ("voice", "voice")
    assert (
        error_code(
            await patient_ws.emit("call:form-answer", {"consultation_id": cid, "accept": True})
        )
        == "form_no_request"
    )

    # Asked again and accepted: video on the same peers (renegotiated).
    assert (await doctor_ws.emit("call:form", {"consultation_id": cid, "form": "video"}))["ok"]
    await patient_ws.next("call:form-requested")
    ack = await patient_ws.emit("call:form-answer", {"consultation_id": cid, "accept": True})
    assert ack["ok"] and ack["data"]["form"] == "video", ack
    assert (await anna.add_video())["ok"] and (await house.add_video())["ok"]
    await wait_for(lambda: anna.frames > 10 and house.frames > 10, 20, "video after the switch")

    # Down to voice needs no consent; the consultation then ends (and its call with it).
    assert (await patient_ws.emit("call:form", {"consultation_id": cid, "form": "voice"}))["ok"]
    assert (
        error_code(await patient_ws.emit("call:form", {"consultation_id": cid, "form": "voice"}))
        == "form_unchanged"
    )
    await doctor.call("POST", f"/api/consultations/{cid}/end", {})
    await wait_for(
        lambda: calls_of(server).registry.resources()["rooms"] == 0, 5, "the room closed"
    )

    record = await patient.call("GET", f"/api/patients/{patient.user['id']}/record")
    (entry,) = [e for e in record["entries"] if e["consultation"]["id"] == cid]
    forms = [(f["form"], f["requested_by"]) for f in entry["forms"]]
    assert forms == [
        ("chat", None),
        ("voice", doctor.user["id"]),
        ("video", doctor.user["id"]),
        ("voice", patient.user["id"]),
    ]
    assert all(f["ended_at"] is not None for f in entry["forms"])
    assert entry["recordings"] == []
    # The switches are in the audit log, by who made them.
    audit = await rows(database_url, t.audit_log, t.audit_log.c.consultation_id == cid)
    assert [a.action for a in audit if a.action == "call.form"] == ["call.form"] * 3


async def test_recording_needs_both_consents_and_lands_in_the_record(
    server: TestServer, database_url: str, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: anna.frames >= 5 and house.frames >= 5, 20, "video both ways")

    # One consent is not enough: nothing is recorded.
    ack = await patient_ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
    assert ack["ok"] and ack["data"]["patient_consent"] and not ack["data"]["recording"], ack
    assert await rows(database_url, t.recordings) == []
    state = await doctor_ws.until("call:recording", lambda r: r["patient_consent"])
    assert state["recording"] is False

    ack = await doctor_ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
    assert ack["ok"] and ack["data"]["recording"], ack
    await patient_ws.until("call:recording", lambda r: r["recording"])
    await asyncio.sleep(2.0)
    assert (await patient_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]

    # Composed into one playable file after the call (test_recording_playback.py).
    deadline = asyncio.get_running_loop().time() + 180
    while (recording := (await rows(database_url, t.recordings))[0]).status == "composing":
        assert asyncio.get_running_loop().time() < deadline, "the recording composed"
        await asyncio.sleep(0.2)
    assert recording.consultation_id == cid and recording.status == "ready"
    consents = await rows(database_url, t.recording_consents)
    assert [(c.user_id, c.consent) for c in consents] == [
        (patient.user["id"], True),
        (doctor.user["id"], True),
    ]
    # In the record of both, and downloadable by both (the same bytes as the checksum).
    record = await doctor.call("GET", f"/api/patients/{patient.user['id']}/record")
    (entry,) = [e for e in record["entries"] if e["consultation"]["id"] == cid]
    (listed,) = entry["recordings"]
    assert listed["status"] == "ready" and listed["size"] > 1000
    for client in (patient, doctor):
        async with client.session.get(
            client.base_url + listed["url"], headers={"Authorization": f"Bearer {client.token}"}
        ) as response:
            assert response.status == 200
            body = await response.read()
        assert hashlib.sha256(body).hexdigest() == listed["sha256"]
        assert body[:4] == b"\x1a\x45\xdf\xa3"  # an EBML (WebM) header
    # Somebody else gets nothing.
    stranger = await api("piotr@demo.test")
    body = await stranger.call("GET", listed["url"], expect=403)
    assert body["error"]["code"] == "not_participant"


async def test_a_withdrawn_consent_means_nothing_is_recorded(
    server: TestServer, database_url: str, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    for ws, consent in ((patient_ws, True), (patient_ws, False), (doctor_ws, True)):
        ack = await ws.emit("call:record-consent", {"consultation_id": cid, "consent": consent})
        assert ack["ok"], ack
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: anna.frames >= 5, 20, "video")
    assert await rows(database_url, t.recordings) == []
    config = await patient_ws.emit("call:config", {"consultation_id": cid})
    assert config["data"]["recording"] == {
        "consultation_id": cid,
        "patient_consent": False,
        "doctor_consent": True,
        "recording": False,
        "recording_id": None,
    }


async def states_of(ws: SocketClient, user_id: int, until: str, timeout: float = 15) -> list[str]:
    """The ``call:state`` states ``ws`` hears of ``user_id``'s leg, up to ``until``."""
    seen: list[str] = []
    while until not in seen:
        state = await ws.until("call:state", lambda s: s["user_id"] == user_id, timeout)
        seen.append(state["state"])
    return seen


async def test_a_participant_rejoining_is_shown_as_reconnecting_to_the_other(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: house.frames >= 5, 20, "the patient's video")
    anna_id = patient.user["id"]
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == anna_id and s["state"] == "connected"
    )
    # The patient's network dropped: her page makes a new peer (new ICE credentials).
    again = Peer(patient_ws, cid)
    peers.append(again)
    assert (await again.offer())["ok"]
    # One event per change the doctor's page can show: her old peer closing and leaving, and
    # the new one connecting, are one "reconnecting" until it is connected.
    assert await states_of(doctor_ws, anna_id, until="connected") == ["reconnecting", "connected"]
    before = house.frames
    await wait_for(lambda: house.frames > before + 10, 15, "video from the rejoined peer")
    assert calls_of(server).registry.resources()["peers"] == 2


async def test_bad_call_input_is_refused_clearly_and_leaks_nothing(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    registry = calls_of(server).registry
    before = registry.resources()
    assert before["rooms"] == 0

    # Malformed SDP, a wrong type, a missing field, not an object.
    send = patient_ws.emit
    assert error_code(
        await send("call:offer", {"consultation_id": cid, "sdp": "v=0\r\nbogus", "type": "offer"})
    ) in ("media_bad_sdp", "media_no_media")
    assert (
        error_code(
            await send("call:offer", {"consultation_id": cid, "sdp": "v=0", "type": "answer"})
        )
        == "media_not_an_offer"
    )
    assert error_code(await send("call:offer", {"consultation_id": cid})) == "invalid_payload"
    assert error_code(await send("call:offer", "nonsense")) == "invalid_payload"
    assert error_code(await send("call:form", {"consultation_id": cid, "form": "hologram"})) == (
        "invalid_payload"
    )
    assert registry.resources() == before

    # Another patient's offer for this consultation: refused, audited, nothing created.
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    intruder = Peer(piotr_ws, cid)
    peers.append(intruder)
    assert error_code(await intruder.offer()) == "not_participant"
    assert error_code(await piotr_ws.emit("call:config", {"consultation_id": cid})) == (
        "not_participant"
    )
    assert (
        error_code(
            await piotr_ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
        )
        == "not_participant"
    )
    assert registry.resources() == before
    assert error_code(await patient_ws.emit("call:config", {"consultation_id": 999_999})) == (
        "consultation_not_found"
    )

    # A real call, hung up: a late offer (a page's ICE restart after the hang-up) is refused.
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    assert registry.resources()["peers"] == 2
    assert (await doctor_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    late = Peer(patient_ws, cid)
    peers.append(late)
    assert error_code(await late.offer()) == "media_no_call"
    assert error_code(await patient_ws.emit("call:hangup", {"consultation_id": cid})) == (
        "media_no_call"
    )
    assert registry.resources() == before
    # An ended consultation has no call either.
    await patient.call("POST", f"/api/consultations/{cid}/end", {})
    after_end = Peer(doctor_ws, cid)
    peers.append(after_end)
    assert error_code(await after_end.offer()) == "consultation_not_active"
    assert registry.resources() == before


async def test_a_first_offer_that_cannot_be_answered_leaves_no_call_behind(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    calls = calls_of(server)

    async def no_common_codec(*args: Any) -> None:
        raise ValueError("no common codec")

    with monkeypatch.context() as patched:
        patched.setattr(CallRoom, "_negotiate", no_common_codec)
        anna = Peer(patient_ws, cid)
        peers.append(anna)
        assert error_code(await anna.offer()) == "media_offer_rejected"
    assert calls.registry.resources()["rooms"] == 0
    assert cid not in calls.bridge.calls  # nothing of it stays in this process's memory
    # The next offer starts the call afresh.
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    assert calls.running() == [(cid, doctor.user["id"])]


async def test_a_recording_whose_row_cannot_be_written_never_starts(
    server: TestServer,
    database_url: str,
    api: Any,
    sockets: Any,
    peers: list[Peer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    ack = await patient_ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
    assert ack["ok"], ack

    async def refused(*args: Any) -> int:
        raise RuntimeError("the database refused the row")

    monkeypatch.setattr(calls_repository, "add_recording", refused)
    ack = await doctor_ws.emit("call:record-consent", {"consultation_id": cid, "consent": True})
    assert error_code(ack) == "internal"
    room = calls_of(server).registry.get(str(cid))
    assert room._recorder is None  # no recorder writes a file that no row names
    assert await rows(database_url, t.recordings) == []


async def test_a_recording_left_by_a_server_that_died_is_finished_when_the_call_opens_again(
    server: TestServer, database_url: str, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    """A server killed while recording leaves its row "recording"; the node that opens the
    call's room next finishes it (no tracks in the folder here: failed), so the pages are not
    told a recording runs that nobody writes."""
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                t.recordings.insert().values(
                    consultation_id=cid,
                    stored_name=f"{cid}-left-behind.webm",
                    status="recording",
                    started_at=datetime.now(UTC),
                )
            )
    finally:
        await engine.dispose()
    config = await patient_ws.emit("call:config", {"consultation_id": cid})
    assert config["data"]["recording"]["recording"] is True  # what the row says, until then
    anna = Peer(patient_ws, cid)
    peers.append(anna)
    assert (await anna.offer())["ok"]
    (left,) = await rows(database_url, t.recordings)
    assert left.status == "failed" and left.ended_at is not None
    config = await patient_ws.emit("call:config", {"consultation_id": cid})
    assert config["data"]["recording"] == {
        "consultation_id": cid,
        "patient_consent": False,
        "doctor_consent": False,
        "recording": False,
        "recording_id": None,
    }


# -- the form is enforced on the media ----------------------------------------------------------


def answer_direction(sdp: str, kind: str) -> str:
    """The direction attribute of the answer's first ``kind`` m-line."""
    section = sdp.split(f"m={kind} ", 1)[1].split("\r\nm=", 1)[0]
    return next(
        line[2:]
        for line in section.split("\r\n")
        if line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive")
    )


async def frames_in(peers: list[Peer], seconds: float) -> list[int]:
    """How many video frames each peer received during the next ``seconds``."""
    before = [p.frames for p in peers]
    await asyncio.sleep(seconds)
    return [p.frames - b for p, b in zip(peers, before, strict=True)]


async def video_flowing(
    patient_ws: SocketClient, doctor_ws: SocketClient, cid: int, peers: list[Peer]
) -> tuple[Peer, Peer]:
    """Both participants' pages joined with video, and 20 frames arrived each way."""
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: anna.frames >= 20 and house.frames >= 20, 20, "video both ways")
    return anna, house


async def test_a_voice_call_relays_no_video_even_from_a_client_that_sends_it(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets, "voice")
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)  # both offer video anyway
    peers += [anna, house]
    for peer in (anna, house):
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        ack = await peer.ws.emit(
            "call:offer", {"consultation_id": cid, "sdp": peer.pc.localDescription.sdp}
        )
        assert ack["ok"], ack
        # The server answers the video m-line inactive...
        assert answer_direction(ack["data"]["sdp"], "video") == "inactive"
        assert answer_direction(ack["data"]["sdp"], "audio") == "sendrecv"
        # ...and the client ignores that: it takes the answer as sendrecv and sends video.
        sdp = ack["data"]["sdp"].replace("a=inactive", "a=sendrecv")
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
    await wait_for(lambda: anna.samples > 50 and house.samples > 50, 20, "voice both ways")
    assert await frames_in([anna, house], 3.0) == [0, 0]
    assert (anna.frames, house.frames) == (0, 0)


async def test_video_stops_at_a_switch_down_and_resumes_only_after_consent(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna, house = await video_flowing(patient_ws, doctor_ws, cid, peers)

    # Down to voice; neither client renegotiates, both keep sending video.
    ack = await patient_ws.emit("call:form", {"consultation_id": cid, "form": "voice"})
    assert ack["ok"] and ack["data"]["form"] == "voice", ack
    at_switch = [anna.frames, house.frames]
    # What was in flight (decoded in the clients' threads) may still land; then nothing.
    await asyncio.sleep(1.0)
    assert all(p.frames - n <= 15 for p, n in zip((anna, house), at_switch, strict=True))
    samples = anna.samples
    assert await frames_in([anna, house], 3.0) == [0, 0]
    assert anna.samples > samples + 50  # the voice goes on

    # Up to video: nothing flows while the patient has not answered...
    ack = await doctor_ws.emit("call:form", {"consultation_id": cid, "form": "video"})
    assert ack["ok"] and ack["data"]["to_user"] == patient.user["id"], ack
    await patient_ws.next("call:form-requested")
    assert await frames_in([anna, house], 2.0) == [0, 0]
    # ...and flows again on the same connections once she consents.
    ack = await patient_ws.emit("call:form-answer", {"consultation_id": cid, "accept": True})
    assert ack["ok"] and ack["data"]["form"] == "video", ack
    before = [anna.frames, house.frames]
    await wait_for(
        lambda: anna.frames > before[0] + 20 and house.frames > before[1] + 20,
        20,
        "video after the consent",
    )


# -- offers are checked before anything is made ------------------------------------------------


def udp_sockets() -> int:
    """UDP sockets this process holds: its descriptors that are sockets in /proc/net/udp(6)."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            inodes |= {line.split()[9] for line in lines}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            count += target.startswith("socket:[") and target[8:-1] in inodes
    return count


def without(sdp: str, *prefixes: str) -> str:
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith(prefixes))


BROKEN_OFFERS = {
    "fingerprint": (lambda sdp: without(sdp, "a=fingerprint"), "media_bad_sdp"),
    "ice": (lambda sdp: without(sdp, "a=ice-ufrag", "a=ice-pwd"), "media_bad_sdp"),
    "setup": (lambda sdp: without(sdp, "a=setup"), "media_bad_sdp"),
    "candidates": (lambda sdp: without(sdp, "a=candidate"), "media_bad_sdp"),
    "rtcp-mux": (lambda sdp: without(sdp, "a=rtcp-mux"), "media_bad_sdp"),
    "mid": (lambda sdp: without(sdp, "a=mid"), "media_bad_sdp"),
    "codec": (lambda sdp: sdp.replace("VP8/90000", "AV1X/90000"), "media_offer_rejected"),
}


async def test_an_offer_missing_what_a_connection_needs_is_refused_and_leaves_nothing(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    calls = calls_of(server)
    anna = Peer(patient_ws, cid)
    peers.append(anna)
    await anna.pc.setLocalDescription(await anna.pc.createOffer())
    complete = anna.pc.localDescription.sdp
    await asyncio.sleep(0.5)  # the client's gathering settles before counting
    sockets_before, tasks_before = udp_sockets(), len(asyncio.all_tasks())

    # Each broken offer in turn, on the same consultation: each refused with its code.
    for name, (broken, code) in BROKEN_OFFERS.items():
        ack = await patient_ws.emit("call:offer", {"consultation_id": cid, "sdp": broken(complete)})
        assert error_code(ack) == code, name
    # Whatever a failed connection would leave (a peer, its 2 UDP sockets, its tasks) would
    # show within a few seconds; nothing does, and the doctor hears of no connection.
    await asyncio.sleep(3.0)
    assert udp_sockets() == sockets_before
    assert len(asyncio.all_tasks()) <= tasks_before
    assert calls.registry.resources()["rooms"] == 0 and cid not in calls.bridge.calls
    assert doctor_ws.pending("call:state") == 0
    # The same page's complete offer then joins.
    again = Peer(patient_ws, cid)
    peers.append(again)
    assert (await again.offer())["ok"]


# -- the codes and states protocol.md names ----------------------------------------------------


async def test_offer_codes_and_the_transport_limit_are_as_documented(
    server: TestServer, api: Any, sockets: Any
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    send = patient_ws.emit
    for sdp in ("", "   ", "v=0\r\n" + "a=x\r\n" * 16_000):
        ack = await send("call:offer", {"consultation_id": cid, "sdp": sdp, "type": "offer"})
        assert error_code(ack) == "media_bad_sdp", len(sdp)
    assert len("v=0\r\n" + "a=x\r\n" * 16_000) > 64_000
    for type_ in ("answer", "pranswer", "rollback"):
        ack = await send("call:offer", {"consultation_id": cid, "sdp": "v=0", "type": type_})
        assert error_code(ack) == "media_not_an_offer"
    assert calls_of(server).registry.resources()["rooms"] == 0
    # A message over the Socket.IO transport's limit (1,000,000 bytes) closes the connection
    # without an ack, before any handler runs (documented as the transport's limit).
    disconnected = asyncio.Event()
    patient_ws.sio.on("disconnect", disconnected.set)
    with contextlib.suppress(Exception):
        await patient_ws.sio.call(
            "call:offer", {"consultation_id": cid, "sdp": "x" * 1_000_000}, timeout=5
        )
    await asyncio.wait_for(disconnected.wait(), 10)
    assert calls_of(server).registry.resources()["rooms"] == 0


async def test_each_participant_hears_closed_once_at_hang_up(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    await video_flowing(patient_ws, doctor_ws, cid, peers)
    ids = (patient.user["id"], doctor.user["id"])
    for user in ids:
        await patient_ws.until(
            "call:state", lambda s, u=user: s["user_id"] == u and s["state"] == "connected", 15
        )
    assert (await doctor_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    heard: list[tuple[int, str]] = []
    while {(user, "closed") for user in ids} - set(heard):
        state = await patient_ws.next("call:state", timeout=10)
        heard.append((state["user_id"], state["state"]))
    await asyncio.sleep(1.0)  # a second "closed" would have followed by now
    while patient_ws.pending("call:state"):
        state = await patient_ws.next("call:state")
        heard.append((state["user_id"], state["state"]))
    assert sorted(heard) == sorted((user, "closed") for user in ids)


# -- /metrics --------------------------------------------------------------------------------


async def scrape(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with aiohttp.ClientSession() as session, session.get(base_url + "/metrics") as response:
        assert response.status == 200
        return parse_metrics(await response.text())


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> float:
    return sum(value for (metric, _), value in samples.items() if metric == name)


async def test_metrics_show_a_call_its_legs_and_what_is_relayed(
    server: TestServer, base_url: str, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    idle = await scrape(base_url)
    assert idle[sample("consult_calls_in_progress")] == 0
    assert idle[sample("consult_call_legs", state="connected")] == 0

    await video_flowing(patient_ws, doctor_ws, cid, peers)
    first = await scrape(base_url)
    assert first[sample("consult_calls_in_progress")] == 1
    assert first[sample("consult_call_legs", state="connected")] == 2
    assert first[sample("consult_call_recordings_in_progress")] == 0
    assert first[sample("consult_call_relayed_frames_total", kind="video")] >= 40
    assert first[sample("consult_call_relayed_packets_total", kind="audio")] > 0
    assert first[sample("consult_call_keyframe_requests_total")] >= 2  # one per outlet attached
    for user in (patient.user["id"], doctor.user["id"]):
        loss = first[
            sample(
                "consult_call_leg_loss_ratio",
                consultation=str(cid),
                user=str(user),
                kind="video",
                direction="in",
            )
        ]
        assert 0 <= loss <= 1
    await asyncio.sleep(1.0)
    second = await scrape(base_url)
    for kind in ("audio", "video"):
        for name in ("consult_call_relayed_frames_total", "consult_call_relayed_packets_total"):
            assert second[sample(name, kind=kind)] > first[sample(name, kind=kind)], (name, kind)
    # Receiver reports come every ~1 s: the round-trip time of both legs shows by then.
    await wait_for_metric(
        base_url,
        lambda m: all(
            (sample("consult_call_leg_rtt_seconds", consultation=str(cid), user=str(u)) in m)
            for u in (patient.user["id"], doctor.user["id"])
        ),
        "both legs' round-trip time",
    )

    assert (await patient_ws.emit("call:hangup", {"consultation_id": cid}))["ok"]
    after = await scrape(base_url)
    assert after[sample("consult_calls_in_progress")] == 0
    assert total(after, "consult_call_legs") == 0
    assert total(after, "consult_call_leg_loss_ratio") == 0
    # What was relayed stays counted after the call.
    for kind in ("audio", "video"):
        name = "consult_call_relayed_frames_total"
        assert after[sample(name, kind=kind)] >= second[sample(name, kind=kind)]


async def wait_for_metric(base_url: str, predicate: Any, what: str, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(await scrape(base_url)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} in /metrics")
        await asyncio.sleep(0.25)
