"""The products catalogue in the database: the shipped CSV when the table is empty, a file
imported with ``consult import-products`` otherwise. Each process reads it on first use (the
server: at start), then again whenever ``refresh`` finds the table changed: the server calls it
every ``REFRESH_INTERVAL`` seconds, so an import reaches running servers within a minute."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from consult.outcome.products import COLUMNS, Catalogue, Product, shipped_catalogue
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

_FLAGS = COLUMNS[6:]
_BY_ID: sa.BindParameter[int] = sa.bindparam("_id")
# Seconds between a running server's looks at the table (a read of a few hundred rows).
REFRESH_INTERVAL: Final = 60.0


@dataclass(frozen=True)
class Replaced:
    """What an import did: rows added, rows changed (or offered again after a withdrawal),
    rows left as they were, rows withdrawn (absent from the file)."""

    new: int
    changed: int
    unchanged: int
    withdrawn: int


def _values(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "substance": product.substance,
        "strength": product.strength,
        "form": product.form,
        "pack_sizes": list(product.pack_sizes),
        **{flag: getattr(product, flag) for flag in _FLAGS},
        "withdrawn": False,
    }


def _product(row: Any) -> Product:
    return Product(
        id=row.id,
        name=row.name,
        substance=row.substance,
        strength=row.strength,
        form=row.form,
        pack_sizes=tuple(row.pack_sizes),
        **{flag: bool(getattr(row, flag)) for flag in _FLAGS},
    )


async def _read(uow: UnitOfWork) -> list[Product]:
    found = await uow.conn.execute(
        sa.select(t.products).where(t.products.c.withdrawn == sa.false())
    )
    return [_product(row) for row in found]


async def replace(uow: UnitOfWork, products: Sequence[Product]) -> Replaced:
    """Make ``products`` the catalogue: new and changed rows written, rows absent from it
    withdrawn (issued prescriptions keep their copy), the others left alone."""
    stored = {row.id: row for row in await uow.conn.execute(sa.select(t.products))}
    fresh = [_values(p) for p in products if p.id not in stored]
    # The SET clause is the parameters' keys; the id goes by another name (SQLAlchemy
    # reserves a column's own name for its new value).
    changed = [
        {**{k: v for k, v in _values(p).items() if k != "id"}, "_id": p.id}
        for p in products
        if p.id in stored and (stored[p.id].withdrawn or _product(stored[p.id]) != p)
    ]
    if fresh:
        await uow.conn.execute(t.products.insert(), fresh)
    if changed:
        await uow.conn.execute(t.products.update().where(t.products.c.id == _BY_ID), changed)
    withdrawn = await uow.conn.execute(
        t.products.update()
        .where(
            t.products.c.id.not_in([p.id for p in products]), t.products.c.withdrawn == sa.false()
        )
        .values(withdrawn=True)
    )
    return Replaced(
        new=len(fresh),
        changed=len(changed),
        unchanged=len(products) - len(fresh) - len(changed),
        withdrawn=withdrawn.rowcount,
    )


class CatalogueStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._catalogue: Catalogue | None = None
        self._loading = asyncio.Lock()

    async def get(self) -> Catalogue:
        """The catalogue, read on first use; an empty table gets the shipped one. The server
        reads it at start, before any unit of work could ask for it: on SQLite a first read
        from inside a writing unit would wait for that unit."""
        if self._catalogue is not None:
            return self._catalogue
        async with self._loading:
            if self._catalogue is None:
                self._catalogue = await self._load()
        return self._catalogue

    async def _load(self) -> Catalogue:
        async with self._db.uow() as uow:
            products = await _read(uow)
            if not products:
                shipped = list(await asyncio.to_thread(shipped_catalogue))
                await replace(uow, shipped)
                await uow.commit()
                products = shipped
        return Catalogue(products)

    async def refresh(self) -> bool:
        """Read the table again (a read-only unit: it never waits for a writer) and take it
        when it differs from what this process holds, as after an import by another process.
        True when it changed. Before the first ``get`` there is nothing to refresh."""
        if self._catalogue is None:
            return False
        async with self._db.reader() as uow:
            products = await _read(uow)
        if not products or set(products) == set(self._catalogue):
            return False  # an empty table is one not loaded yet: keep what is served
        self._catalogue = Catalogue(products)
        return True

    async def replace(self, products: Sequence[Product]) -> Replaced:
        async with self._db.uow() as uow:
            counts = await replace(uow, products)
            await uow.commit()
        self._catalogue = Catalogue(products)
        return counts
