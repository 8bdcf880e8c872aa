"""``consult create-user``: an operator makes an account and gets a one-time link; its owner
sets a password with it (a weak one refused, the link still good), and a doctor then sets up
TOTP at the first login. Bad input creates nothing."""

from __future__ import annotations

import asyncio
import re

import pyotp

from consult.storage import tables as t
from tests.support import consult_command, count

PASSWORD = "a long enough passphrase"


async def _create(database_url: str, *args: str) -> tuple[int, str, str]:
    """The command in a process of its own (the test's server, on this loop, keeps serving
    and committing meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *consult_command(),
        "create-user",
        "--database-url",
        database_url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_a_doctor_who_sets_a_password_and_totp(api, database_url):
    code, out, err = await _create(
        database_url,
        "--role",
        "doctor",
        "--email",
        "New.Doc@Clinic.test",
        "--name",
        "Dr New",
        "--specialty",
        "dermatology",
    )
    assert code == 0, err
    token = re.search(r"/account/reset\.html#token=([A-Za-z0-9_-]+)", out)
    assert token and "new.doc@clinic.test" in out
    anonymous = await api()
    weak = {"token": token.group(1), "password": "short"}
    refused = await anonymous.call("POST", "/api/password/reset", weak, expect=400)
    assert refused["error"]["code"] == "weak_password"
    body = {"token": token.group(1), "password": PASSWORD}
    await anonymous.call("POST", "/api/password/reset", body, expect=204)

    login = {"email": "new.doc@clinic.test", "password": PASSWORD}
    first = await anonymous.call("POST", "/api/login", login)
    step = {
        "challenge": first["challenge"],
        "code": pyotp.TOTP(first["totp_setup"]["secret"]).now(),
    }
    done = await anonymous.call("POST", "/api/login/totp", step)
    assert done["user"]["role"] == "doctor" and done["user"]["specialties"] == ["dermatology"]
    assert done["user"]["email_confirmed"] is True


async def test_bad_input_creates_nothing(api, database_url):
    users = await count(database_url, t.users)
    for args, says in (
        (["--role", "doctor", "--email", "anna@demo.test", "--name", "X"], "exists already"),
        (
            ["--role", "doctor", "--email", "x@clinic.test", "--name", "X", "--specialty", "nope"],
            "unknown specialty",
        ),
        (["--role", "patient", "--email", "not-an-address", "--name", "X"], "not an e-mail"),
        (
            [
                "--role",
                "scheduler",
                "--email",
                "s@clinic.test",
                "--name",
                "S",
                "--specialty",
                "dermatology",
            ],
            "only doctors",
        ),
    ):
        code, _, err = await _create(database_url, *args)
        assert code == 1 and says in err, err
    code, _, err = await _create(
        database_url, "--role", "admin", "--email", "a@b.test", "--name", "A"
    )
    assert code == 2 and "invalid choice" in err
    assert await count(database_url, t.users) == users
