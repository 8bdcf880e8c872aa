"""STUN / TURN settings and the short-lived TURN credentials handed to a page."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from consult.media.ice import IceConfig, turn_credentials
from consult.settings import Settings


def test_turn_credentials_are_coturn_rest_credentials() -> None:
    username, password = turn_credentials("s3cret", "patient-7", now=1_000_000.9, ttl=600)
    assert username == "1000600:patient-7"  # expiry first, as coturn reads it
    expected = hmac.new(b"s3cret", b"1000600:patient-7", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_a_page_gets_stun_and_turn_from_the_settings() -> None:
    settings = Settings.from_env(
        {
            "CONSULT_STUN_URLS": "stun:stun.example.org:3478, stun:backup.example.org",
            "CONSULT_TURN_URLS": "turn:turn.example.org:3478?transport=udp,turns:turn.example.org",
            "CONSULT_TURN_SECRET": "s3cret",
            "CONSULT_TURN_TTL": "300",
        }
    )
    ice = IceConfig.from_settings(settings)
    stun, turn = [s.to_dict() for s in ice.servers_for("doctor-2", now=100.0)]
    assert stun == {"urls": ["stun:stun.example.org:3478", "stun:backup.example.org"]}
    assert turn["urls"] == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org"]
    assert turn["username"] == "400:doctor-2"
    assert turn["credential"] == turn_credentials("s3cret", "doctor-2", 100.0, 300)[1]
    # The secret is never shown, neither in the settings nor in the config.
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(ice)
    # The server's peers use STUN only.
    assert [s.urls for s in ice.server_configuration().iceServers] == [list(ice.stun_urls)]


def test_without_settings_there_are_no_ice_servers_at_all() -> None:
    ice = IceConfig.from_settings(Settings())
    assert ice.servers_for("patient-1", now=0) == []
    # An empty list, not None: aiortc would otherwise add a public STUN server.
    assert ice.server_configuration().iceServers == []


@pytest.mark.parametrize(
    "changes",
    [
        {"stun_urls": ("turn:wrong.example.org",)},
        {"turn_urls": ("stun:wrong.example.org",), "turn_secret": "x"},
        {"turn_urls": ("turn:turn.example.org",)},  # no secret
        {"turn_ttl": 0},
    ],
)
def test_bad_ice_settings_are_refused_at_start(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IceConfig(**changes)  # type: ignore[arg-type]


def test_a_user_id_with_a_colon_cannot_forge_an_expiry() -> None:
    with pytest.raises(ValueError):
        turn_credentials("s3cret", "9999999999:someone", now=0, ttl=60)
