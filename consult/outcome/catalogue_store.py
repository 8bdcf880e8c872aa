"""The products catalogue in the database: the shipped CSV when the table is empty, a file
imported with ``consult import-products`` otherwise. Each process reads it once, on first use,
and again after an import of its own (other processes read a new import when they restart)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from consult.outcome.products import COLUMNS, Catalogue, Product, shipped_catalogue
from consult.storage import tables as t
from consult.storage.uow import Database, UnitOfWork

_FLAGS = COLUMNS[6:]


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


async def replace(uow: UnitOfWork, products: Sequence[Product]) -> tuple[int, int]:
    """Make ``products`` the catalogue: new and changed rows written, rows absent from it
    withdrawn (issued prescriptions keep their copy). Returns (written, withdrawn)."""
    ids = [p.id for p in products]
    known = set((await uow.conn.execute(sa.select(t.products.c.id))).scalars())
    fresh = [_values(p) for p in products if p.id not in known]
    if fresh:
        await uow.conn.execute(t.products.insert(), fresh)
    for product in products:
        if product.id in known:
            values = _values(product)
            del values["id"]
            await uow.conn.execute(
                t.products.update().where(t.products.c.id == product.id).values(**values)
            )
    withdrawn = await uow.conn.execute(
        t.products.update()
        .where(t.products.c.id.not_in(ids), t.products.c.withdrawn == sa.false())
        .values(withdrawn=True)
    )
    return len(products), withdrawn.rowcount


class CatalogueStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._catalogue: Catalogue | None = None
        self._loading = asyncio.Lock()

    async def get(self) -> Catalogue:
        """The catalogue, read on first use; an empty table gets the shipped one. The server
        reads it at start (``warm``), before any unit of work could ask for it: on SQLite a
        first read from inside a writing unit would wait for that unit."""
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

    async def replace(self, products: Sequence[Product]) -> tuple[int, int]:
        async with self._db.uow() as uow:
            counts = await replace(uow, products)
            await uow.commit()
        self._catalogue = Catalogue(products)
        return counts
