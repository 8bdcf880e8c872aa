"""Cross-site request forgery over real HTTP: with the session cookie, a state change from a
foreign or unnamed origin is refused (403 cross_origin) and changes nothing, and a route that
takes JSON refuses other bodies (415 unsupported_media_type). The same requests from the
pages' origin, or with a bearer token, go through. Behind a trusted proxy the origin is the one
the browser saw (X-Forwarded-Proto, X-Forwarded-Host); CONSULT_PUBLIC_ORIGIN names it outright.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.clock import ManualClock
from consult.storage import tables as t
from tests.integration.conftest import settings_for
from tests.support import ApiClient, count, png

# Checked at the edge before a handler runs: storage does not decide it.
pytestmark = pytest.mark.one_backend

FOREIGN = "https://evil.example"


class Browser:
    """Requests as a browser sends them for a page: the session cookie, and whatever Origin,
    Referer and body the test chooses (aiohttp keeps no cookie for 127.0.0.1 by itself)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.origin = base  # the pages' own origin: where the test server listens
        self.http = aiohttp.ClientSession()
        self.cookie = {"Cookie": f"consult_session={token}"}

    async def send(
        self,
        method: str,
        path: str,
        *,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> tuple[int, Any]:
        sent = {**self.cookie, **({"Origin": origin} if origin else {}), **(headers or {})}
        async with self.http.request(method, self.base + path, headers=sent, **body) as response:
            answer = await response.json() if response.status != 204 else None
            return response.status, answer

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def anna(api: Callable[..., Awaitable[ApiClient]], base_url: str) -> Any:
    client = await api("anna@demo.test")
    browser = Browser(base_url, str(client.token))
    yield client, browser
    await browser.close()


def refused(answer: tuple[int, Any], status: int = 403, code: str = "cross_origin") -> bool:
    return answer[0] == status and answer[1]["error"]["code"] == code


async def test_a_text_plain_body_from_another_site_creates_no_consultation(
    anna: Any, database_url: str
) -> None:
    client, browser = anna
    body = '{"specialty": "dermatology", "form": "chat"}'
    plain = {"Content-Type": "text/plain"}
    for origin in (FOREIGN, None, "null"):
        answer = await browser.send(
            "POST", "/api/consultations", origin=origin, headers=plain, data=body
        )
        assert refused(answer), (origin, answer)
    # From the pages' origin, text/plain is still not JSON.
    answer = await browser.send(
        "POST", "/api/consultations", origin=browser.origin, headers=plain, data=body
    )
    assert refused(answer, 415, "unsupported_media_type")
    assert await count(database_url, t.consultations) == 0

    # As the page sends it: its origin, JSON.
    status, _ = await browser.send(
        "POST", "/api/consultations", origin=browser.origin, data=body, headers=json_type()
    )
    assert status == 201
    # A bearer client sends what it likes: no cookie, no Origin check.
    await client.call("POST", f"/api/consultations/{await open_id(client)}/end", {})
    async with client.session.post(
        client.base_url + "/api/consultations",
        data=body,
        headers={"Authorization": f"Bearer {client.token}", "Origin": FOREIGN, **plain},
    ) as response:
        assert response.status == 201


def json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}


async def open_id(client: ApiClient) -> int:
    opened = (await client.call("GET", "/api/consultations/open"))["consultations"]
    return int(opened[0]["id"])


async def test_an_empty_post_from_another_site_cancels_no_booking(
    anna: Any, database_url: str
) -> None:
    client, browser = anna
    slot = (await client.call("GET", "/api/slots?specialty=dermatology&limit=2"))["slots"]
    bookings = [
        (await client.call("POST", "/api/bookings", {"slot_id": s["id"]}, expect=201))["id"]
        for s in slot
    ]
    cancel = f"/api/bookings/{bookings[0]}/cancel"
    assert refused(await browser.send("POST", cancel, origin=FOREIGN))
    assert refused(await browser.send("POST", cancel))  # no Origin, no Referer
    # A foreign Referer (when a browser sends no Origin) is refused as well.
    assert refused(await browser.send("POST", cancel, headers={"Referer": FOREIGN + "/x"}))
    mine = (await client.call("GET", "/api/bookings"))["bookings"]
    assert {b["status"] for b in mine} == {"active"}

    # The pages' origin, named by Origin or by Referer: an empty body is fine (nothing to read).
    status, _ = await browser.send("POST", cancel, origin=browser.origin)
    assert status == 200
    status, _ = await browser.send(
        "POST",
        f"/api/bookings/{bookings[1]}/cancel",
        headers={"Referer": browser.origin + "/patient/"},
    )
    assert status == 200
    mine = (await client.call("GET", "/api/bookings"))["bookings"]
    assert {b["status"] for b in mine} == {"cancelled"}


async def test_a_multipart_upload_from_another_site_adds_no_document(
    anna: Any, database_url: str
) -> None:
    client, browser = anna

    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("description", "A rash, photographed")
        data.add_field("file", png(), filename="scan.png", content_type="image/png")
        return data

    assert refused(await browser.send("POST", "/api/documents", origin=FOREIGN, data=form()))
    assert await count(database_url, t.documents) == 0
    status, answer = await browser.send(
        "POST", "/api/documents", origin=browser.origin, data=form()
    )
    assert status == 201, answer
    await client.call("POST", "/api/documents", data=form(), expect=201)
    assert await count(database_url, t.documents) == 2


async def test_a_logout_from_another_site_ends_no_session(anna: Any) -> None:
    client, browser = anna
    assert refused(await browser.send("POST", "/api/logout", origin=FOREIGN))
    assert (await browser.send("GET", "/api/me"))[0] == 200  # still logged in
    status, _ = await browser.send("POST", "/api/logout", origin=browser.origin)
    assert status == 204
    assert (await browser.send("GET", "/api/me"))[0] == 401


async def start(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    database_url: str,
    tmp_path: Path,
    clock: ManualClock,
    **overrides: Any,
) -> str:
    app = create_app(settings_for(database_url, tmp_path, **overrides), clock=clock)
    return str((await aiohttp_server(app)).make_url("/")).rstrip("/")


async def logout_from(base: str, origin: str, headers: dict[str, str] | None = None) -> int:
    client = await ApiClient(base).login("piotr@demo.test")
    browser = Browser(base, str(client.token))
    try:
        status, _ = await browser.send("POST", "/api/logout", origin=origin, headers=headers)
        return status
    finally:
        await browser.close()
        await client.close()


PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "consult.example.org"}


async def test_behind_a_trusted_proxy_the_origin_is_the_one_the_browser_saw(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    base = await start(aiohttp_server, database_url, tmp_path, clock, trusted_proxies="127.0.0.1")
    assert await logout_from(base, "https://consult.example.org", PROXIED) == 204
    assert await logout_from(base, "https://consult.example.org:443", PROXIED) == 204
    assert await logout_from(base, "https://evil.example", PROXIED) == 403
    assert await logout_from(base, "http://consult.example.org", PROXIED) == 403  # not https


async def test_forwarding_headers_from_an_untrusted_peer_name_no_origin(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    base = await start(aiohttp_server, database_url, tmp_path, clock)
    assert await logout_from(base, "https://consult.example.org", PROXIED) == 403
    assert await logout_from(base, base, PROXIED) == 204


async def test_a_public_origin_setting_is_the_only_origin_allowed(
    aiohttp_server: Any, database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    base = await start(
        aiohttp_server,
        database_url,
        tmp_path,
        clock,
        public_origin="https://consult.example.org, https://staff.example.org:8443",
    )
    assert await logout_from(base, "https://CONSULT.example.org") == 204
    assert await logout_from(base, "https://staff.example.org:8443") == 204
    assert await logout_from(base, base) == 403  # the Host itself is no longer enough


def test_a_malformed_public_origin_stops_start_up(tmp_path: Path) -> None:
    for wrong in ("consult.example.org", "https://consult.example.org/pages", "ftp://x"):
        with pytest.raises(ValueError, match="CONSULT_PUBLIC_ORIGIN"):
            create_app(
                settings_for(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path, public_origin=wrong)
            )
