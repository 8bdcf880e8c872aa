from __future__ import annotations

from pathlib import Path

import pytest

from consult.errors import (
    Conflict,
    ConsultError,
    Invalid,
    LimitReached,
    NotAllowed,
    NotFound,
    Unavailable,
)
from consult.settings import Settings
from consult.signaling.acks import ack


def test_defaults_are_the_embedded_setup():
    s = Settings.from_env({})
    assert s.database_url == "sqlite+aiosqlite:///consult.db"
    assert s.redis_url == "" and (s.host, s.port) == ("127.0.0.1", 8080)


def test_environment_then_command_line():
    env = {
        "CONSULT_PORT": "9000",
        "CONSULT_DEMO": "yes",
        "CONSULT_WEB_DIR": "/srv/web",
        "CONSULT_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    s = Settings.from_env(env, port=9100, host=None)
    assert s.port == 9100 and s.demo is True and s.web_dir == Path("/srv/web")
    assert s.host == "127.0.0.1" and s.redis_url.startswith("redis://")


def test_the_clinic_named_on_printouts():
    assert Settings.from_env({}).clinic_name == "consult demo clinic"
    named = Settings.from_env({"CONSULT_CLINIC_NAME": "Przychodnia Łąka"})
    assert named.clinic_name == "Przychodnia Łąka"
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValueError, match="CONSULT_CLINIC_NAME"):
            Settings.from_env({"CONSULT_CLINIC_NAME": bad})


def test_call_leases_and_forwarding_need_sensible_times():
    s = Settings.from_env({})
    assert (s.call_lease, s.call_forward_timeout, s.media_address) == (5.0, 5.0, "")
    for bad in ({"CONSULT_CALL_LEASE": "0.5"}, {"CONSULT_CALL_FORWARD_TIMEOUT": "0"}):
        with pytest.raises(ValueError, match="CONSULT_CALL_"):
            Settings.from_env(bad)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Invalid, 400),
        (NotAllowed, 403),
        (NotFound, 404),
        (Conflict, 409),
        (LimitReached, 429),
        (Unavailable, 503),
    ],
)
def test_errors_carry_a_status_and_a_stable_code(error: type[ConsultError], status: int):
    exc = error("human words", code="machine_code", details={"x": 1})
    assert exc.status == status
    assert exc.to_dict() == {"code": "machine_code", "message": "human words", "details": {"x": 1}}


async def test_acks_wrap_results_and_hide_internal_errors():
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async def refused() -> None:
        raise Conflict("no", code="busy")

    assert await ack(boom()) == {
        "ok": False,
        "error": {"code": "internal", "message": "something went wrong"},
    }
    assert await ack(refused()) == {"ok": False, "error": {"code": "busy", "message": "no"}}
