"""A 405 names the methods the path takes (``Allow``, RFC 9110), on every route of the registry."""

from __future__ import annotations

import re
from collections import defaultdict

import aiohttp

from consult.app import APIS

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _paths() -> dict[str, set[str]]:
    taken: dict[str, set[str]] = defaultdict(set)
    for api in APIS:
        for spec in api.routes:
            taken[spec.path].add(spec.method)
    return taken


async def test_every_405_carries_allow(api, base_url):
    anna = await api("anna@demo.test")
    refused = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {anna.token}"}) as http:
        for path, methods in _paths().items():
            url = base_url + re.sub(r"{\w+}", "1", path)
            for method in sorted(set(METHODS) - methods):
                async with http.request(method, url) as response:
                    assert response.status == 405, (method, path, response.status)
                    body = await response.json()
                    assert body["error"]["code"] == "method_not_allowed"
                    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
                    assert allowed == methods, (method, path, allowed)
                    refused += 1
    assert refused > 100  # the 36 operations, each with several methods
