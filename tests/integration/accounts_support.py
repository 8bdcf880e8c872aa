"""Shared by the accounts tests: a server whose outbox delivers to a real SMTP server
(aiosmtpd) started by the test, and signing up through the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from tests.integration.conftest import settings_for
from tests.mail_server import Mailbox, link_token, mailbox
from tests.support import ApiClient

PASSWORD = "a long enough passphrase"


@pytest.fixture(name="mail")
def mail_fixture() -> Iterator[Mailbox]:
    yield from mailbox()


@pytest.fixture(name="server")
async def mail_server_fixture(
    database_url: str,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
    mail: Mailbox,
) -> TestServer:
    settings = settings_for(database_url, tmp_path, outbox_interval=0.05, **mail.settings())
    return await aiohttp_server(create_app(settings, clock=clock))


async def sign_up(
    anonymous: ApiClient, email: str, name: str = "Ewa Nowa", password: str = PASSWORD
) -> Any:
    body = {"email": email, "name": name, "password": password, "accept_terms": True}
    return await anonymous.call("POST", "/api/signup", body, expect=202)


async def signed_up_and_confirmed(anonymous: ApiClient, mail: Mailbox, email: str) -> None:
    await sign_up(anonymous, email)
    token = link_token(await mail.wait(email))
    await anonymous.call("POST", "/api/signup/confirm", {"token": token}, expect=204)
