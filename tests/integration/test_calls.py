"""Calls in the product over real Socket.IO and real UDP on loopback, on each backend.

The pages are played by aiortc client peers (what a browser does: one RTCPeerConnection with
the server per participant, a complete offer over ``call:offer``). Covered: a video call
matched from the queue, media both ways; switching forms with the other side's consent and the
timeline in the record; recording only with both consents, its file in the record; the quality
push to the doctor only; "reconnecting" when a leg rejoins; bad input (malformed SDP, another
consultation's call, an offer after hang-up) refused with a clear error and nothing leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

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

from consult.calls import repository as calls_repository
from consult.calls.service import CallService
from consult.http.routing import SERVICES
from consult.media.call import CallRoom
from consult.storage import tables as t
from tests.support import (
    ApiClient,
    SocketClient,
    loopback_only,
    rows,
    start_and_accept,
    wait_for,
)

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
    quality = await doctor_ws.until(
        "call:quality",
        lambda q: all(leg["state"] == "connected" for leg in q["legs"]),
        timeout=8,
    )
    assert quality["consultation_id"] == cid
    assert {leg["role"] for leg in quality["legs"]} == {"patient", "doctor"}
    for leg in quality["legs"]:
        video_in = next(s for s in leg["streams"] if (s["kind"], s["direction"]) == ("video", "in"))
        assert video_in["packets"] > 0 and video_in["bitrate"] >= 0
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


async def test_a_participant_rejoining_is_shown_as_reconnecting_to_the_other(
    server: TestServer, api: Any, sockets: Any, peers: list[Peer]
) -> None:
    doctor, doctor_ws, patient, patient_ws, cid = await video_consultation(api, sockets)
    anna, house = Peer(patient_ws, cid), Peer(doctor_ws, cid)
    peers += [anna, house]
    assert (await anna.offer())["ok"] and (await house.offer())["ok"]
    await wait_for(lambda: house.frames >= 5, 20, "the patient's video")
    # The patient's network dropped: her page makes a new peer (new ICE credentials).
    again = Peer(patient_ws, cid)
    peers.append(again)
    assert (await again.offer())["ok"]
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == patient.user["id"] and s["state"] == "reconnecting"
    )
    await doctor_ws.until(
        "call:state", lambda s: s["user_id"] == patient.user["id"] and s["state"] == "connected"
    )
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
        == "invalid_payload"
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
    assert cid not in calls._calls  # nothing of it stays in this process's memory
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
