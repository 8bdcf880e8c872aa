from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import backends


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backends.sqlite_template(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from backends.postgres_database()


@pytest.fixture(params=backends.BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """An empty, migrated database on each configured backend."""
    if request.param == "sqlite":
        yield backends.sqlite_copy(sqlite_template, tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
        await backends.truncate_postgres(url)
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``one_backend`` checks what storage does not decide (the media relay, the
    transport's own checks): it runs on the first configured backend only, which keeps the
    suite's time for what does differ between SQLite and PostgreSQL."""
    first = backends.BACKENDS[0] if backends.BACKENDS else None
    dropped = [
        item
        for item in items
        if item.get_closest_marker("one_backend")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url", first) != first  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in set(dropped)]
