"""The products catalogue in the database: processes starting at once on an empty table all
end up with the shipped catalogue (one fills it, the others read it), on each backend."""

from __future__ import annotations

import asyncio

from consult.events import EventBus
from consult.outcome.catalogue_store import CatalogueStore
from consult.outcome.products import shipped_catalogue
from consult.storage import tables as t
from consult.storage.engine import create_engine
from consult.storage.uow import Database
from tests.support import count


async def test_stores_starting_together_on_an_empty_table_all_load_the_catalogue(database_url):
    databases = [Database(create_engine(database_url), EventBus()) for _ in range(3)]
    try:
        loaded = await asyncio.gather(*(CatalogueStore(db).get() for db in databases))
    finally:
        for db in databases:
            await db.dispose()
    shipped = len(shipped_catalogue())
    assert [len(c) for c in loaded] == [shipped] * 3
    assert await count(database_url, t.products) == shipped
