"""A video call relayed through a real TURN server (Debian's coturn), with the short-lived
credentials the server hands each page (``call:config``: the TURN REST scheme, HMAC of the
shared secret): both pages may use relay candidates only (``iceTransportPolicy: "relay"``, as a
browser behind a firewall that lets nothing but its TURN server through), so every packet of
both legs goes through coturn. Each page plays the other's video; each page's selected
candidate pair is a relay one (WebRTC statistics); coturn logged an allocation for each
participant's credential.

The server's own aiortc peers need no TURN: they are reachable (host candidates), and the
relayed legs reach them from coturn's relay address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aioice.ice import get_host_addresses
from playwright.sync_api import Page

from tests.e2e.helpers import OpenPage, assert_no_problems
from tests.e2e.test_calls import go_online, plays, start
from tests.support import Server, demo_server
from tests.turn_server import TurnServer

# Before any script of the page: every RTCPeerConnection the page makes gathers relay candidates
# only, and is kept where the test can read its statistics.
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  class RelayOnly extends Native {
    constructor(config, ...rest) {
      super({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
      window.__peers.push(this);
    }
  }
  window.RTCPeerConnection = RelayOnly;
})();
"""

# The connected peer's selected candidate pair, its two candidates, and every local candidate.
SELECTED_PAIR = """
async () => {
  const pc = window.__peers.filter((p) => p.connectionState === "connected").at(-1);
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  const locals = [];
  stats.forEach((s) => { if (s.type === "local-candidate") locals.push(s.candidateType); });
  return {
    local: local.candidateType, relayProtocol: local.relayProtocol, url: local.url,
    remote: remote.candidateType, remoteAddress: remote.address,
    bytesReceived: pair.bytesReceived, bytesSent: pair.bytesSent, locals,
  };
}
"""


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    """coturn, allowed to relay to the addresses the server's aiortc peers gather (aioice's
    host addresses: every interface's but loopback), and to nothing else."""
    server = TurnServer(tmp_path, get_host_addresses(use_ipv4=True, use_ipv6=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path, demo_database: Path, turn: TurnServer) -> Iterator[Server]:
    """The demo server handing out TURN credentials for ``turn`` (overrides conftest's)."""
    settings = {"CONSULT_TURN_URLS": turn.url, "CONSULT_TURN_SECRET": turn.secret}
    with demo_server(tmp_path, template=demo_database, settings=settings) as running:
        yield running


def relay_only(page: Page) -> None:
    page.context.add_init_script(RELAY_ONLY)


def selected_pair(page: Page) -> dict[str, Any]:
    page.wait_for_function(f"({SELECTED_PAIR})().then((p) => p !== null)", timeout=20_000)
    pair: dict[str, Any] = page.evaluate(SELECTED_PAIR)
    return pair


@pytest.mark.e2e
def test_a_video_call_flows_through_turn_with_relay_candidates_only(
    open_page: OpenPage, turn: TurnServer
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    relay_only(doctor)
    relay_only(patient)
    go_online(doctor)
    card = start(patient, doctor, "video")

    plays(card.get_by_test_id("call-panel"), video=True)
    plays(patient.get_by_test_id("call-panel"), video=True)
    for page in (doctor, patient):
        pair = selected_pair(page)
        assert pair["local"] == "relay", pair
        assert set(pair["locals"]) == {"relay"}, pair  # no host candidate was gathered
        assert pair["url"] == turn.url, pair  # the TURN server the consult server named
        assert pair["bytesReceived"] > 10_000 and pair["bytesSent"] > 10_000, pair

    # coturn allocated a relay for each participant's credential ("<expiry>:<user id>").
    log = turn.log_text()
    users = set(re.findall(r"username=<\d+:(\d+)>", log))
    assert len(users) == 2, turn.log_tail()
    assert re.search(r"ALLOCATE processed, success", log), turn.log_tail()
    assert_no_problems(doctor_problems, patient_problems)
