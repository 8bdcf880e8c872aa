"""Two-factor login with TOTP: staff always, patients when they turn it on; recovery codes;
wrong codes refused, changing nothing, and counted as failed logins (throttled)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import sqlalchemy as sa

from consult.accounts.passwords import hash_password
from consult.demo import DEMO_PASSWORD
from consult.storage import tables as t
from tests.support import count, demo_totp_code, execute, rows

LOGIN = "/api/login"
STEP = "/api/login/totp"


def _wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


async def test_a_doctor_logs_in_with_password_then_code(api, database_url):
    client = await api()
    first = await client.call(
        "POST", LOGIN, {"email": "dr.house@demo.test", "password": DEMO_PASSWORD}
    )
    assert first["totp_required"] and first["token"] is None and first["user"] is None
    assert first["totp_setup"] is None  # the demo secret is in force already
    sessions = await count(database_url, t.sessions)
    wrong = {"challenge": first["challenge"], "code": _wrong(demo_totp_code())}
    refused = await client.call("POST", STEP, wrong, expect=401)
    assert refused["error"]["code"] == "bad_totp_code"
    assert await count(database_url, t.sessions) == sessions
    right = {"challenge": first["challenge"], "code": demo_totp_code()}
    done = await client.call("POST", STEP, right)
    assert done["user"]["email"] == "dr.house@demo.test" and done["token"]
    assert done["recovery_codes"] is None
    again = await client.call("POST", STEP, right, expect=400)
    assert again["error"]["code"] == "token_used"
    denied = t.audit_log.c.detail == "wrong TOTP code"
    assert await count(database_url, t.audit_log, denied) == 1


async def test_wrong_codes_count_as_failed_logins(api):
    client = await api()
    login = {"email": "dr.grey@demo.test", "password": DEMO_PASSWORD}
    challenge = (await client.call("POST", LOGIN, login))["challenge"]
    wrong = {"challenge": challenge, "code": _wrong(demo_totp_code())}
    statuses = []
    for _ in range(6):
        async with client.session.post(client.base_url + STEP, json=wrong) as response:
            statuses.append(response.status)
    assert statuses[:4] == [401] * 4 and statuses[-1] == 429, statuses
    right = {"challenge": challenge, "code": demo_totp_code()}
    locked = await client.call("POST", STEP, right, expect=429)
    assert locked["error"]["code"] == "too_many_attempts"


async def test_new_staff_set_up_totp_at_their_first_login(api, database_url):
    password = "a long enough passphrase"
    now = datetime.now(UTC)
    await execute(
        database_url,
        t.users.insert().values(
            email="new.doctor@clinic.test",
            password_hash=hash_password(password),
            role="doctor",
            identity="verified",
            name="Dr New",
            created_at=now,
            email_confirmed_at=now,
        ),
    )
    client = await api()
    first = await client.call(
        "POST", LOGIN, {"email": "new.doctor@clinic.test", "password": password}
    )
    setup = first["totp_setup"]
    assert setup["uri"].startswith("otpauth://totp/consult:new.doctor%40clinic.test?")
    code = pyotp.TOTP(setup["secret"]).now()
    done = await client.call("POST", STEP, {"challenge": first["challenge"], "code": code})
    assert len(done["recovery_codes"]) == 10
    (row,) = await rows(database_url, t.users, t.users.c.email == "new.doctor@clinic.test")
    assert row.totp_enabled_at is not None and row.totp_secret == setup["secret"]
    # Staff cannot turn it off.
    client.token = done["token"]
    refused = await client.call("POST", "/api/me/totp/disable", {"password": password}, expect=403)
    assert refused["error"]["code"] == "totp_required_for_staff"


async def test_a_patient_turns_totp_on_uses_a_recovery_code_once_and_turns_it_off(
    api, database_url
):
    anna = await api("anna@demo.test")
    setup = await anna.call("POST", "/api/me/totp/setup")
    totp = pyotp.TOTP(setup["secret"])
    bad = await anna.call("POST", "/api/me/totp/enable", {"code": _wrong(totp.now())}, expect=403)
    assert bad["error"]["code"] == "bad_totp_code"
    assert (await anna.call("GET", "/api/me"))["totp"] is False
    codes = (await anna.call("POST", "/api/me/totp/enable", {"code": totp.now()}))["recovery_codes"]
    assert (await anna.call("GET", "/api/me"))["totp"] is True

    client = await api()
    login = {"email": "anna@demo.test", "password": DEMO_PASSWORD}
    first = await client.call("POST", LOGIN, login)
    await client.call("POST", STEP, {"challenge": first["challenge"], "code": codes[0]})
    second = await client.call("POST", LOGIN, login)
    reused = {"challenge": second["challenge"], "code": codes[0]}
    assert (await client.call("POST", STEP, reused, expect=401))["error"]["code"] == (
        "bad_totp_code"
    )
    await client.call("POST", STEP, {"challenge": second["challenge"], "code": totp.now()})

    wrong = await anna.call("POST", "/api/me/totp/disable", {"password": "nope"}, expect=403)
    assert wrong["error"]["code"] == "wrong_password"
    await anna.call("POST", "/api/me/totp/disable", {"password": DEMO_PASSWORD}, expect=204)
    direct = await client.call("POST", LOGIN, login)
    assert direct["token"] and not direct["totp_required"]
    user = sa.select(t.users.c.id).where(t.users.c.email == "anna@demo.test").scalar_subquery()
    assert await count(database_url, t.recovery_codes, t.recovery_codes.c.user_id == user) == 0
