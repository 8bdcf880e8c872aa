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
