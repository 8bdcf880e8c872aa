"""The medicinal products catalogue the doctor prescribes from, and the search as they type.

The catalogue ships as data/products.csv (a few hundred products common in Poland); another of
the same columns can replace it (``read_products`` checks one). Nothing is read at import time:
the shipped file is read on first use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Final

from consult.errors import Invalid
from consult.outcome.folding import fold, query_words
from consult.outcome.validity import Category

COLUMNS: Final = (
    "id",
    "name",
    "substance",
    "strength",
    "form",
    "pack_sizes",
    "antibiotic",
    "psychotropic_narcotic",
    "immunological",
    "long_term_eligible",
)
_FLAGS: Final = COLUMNS[6:]
_TEXTS: Final = COLUMNS[1:5]
MAX_TEXT: Final = 200
MAX_PACK: Final = 10_000
MAX_ERRORS: Final = 20  # errors reported per file: enough to fix a column, bounded
SEARCH_LIMIT: Final = 20
SEARCH_MAX: Final = 50


@dataclass(frozen=True)
class _Folded:
    name: str
    substance: str
    words: tuple[str, ...]
    every: str


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    substance: str
    strength: str
    form: str
    pack_sizes: tuple[int, ...]
    antibiotic: bool = False
    psychotropic_narcotic: bool = False
    immunological: bool = False
    long_term_eligible: bool = False

    @cached_property
    def folded(self) -> _Folded:
        """For the search: the folded name and substance, their words, and all four texts.
        Made on the first search, not with the product: a prescription read back is a
        product too (the renewal rules), and a long record reads hundreds (record_bench.py)."""
        name, substance = fold(self.name), fold(self.substance)
        every = " ".join((name, substance, fold(self.strength), fold(self.form)))
        starts = tuple(f"{name} {substance}".replace("-", " ").split())
        return _Folded(name, substance, starts, every)

    @property
    def category(self) -> Category:
        """The validity category: the strictest of its flags."""
        if self.psychotropic_narcotic:
            return Category.PSYCHOTROPIC_NARCOTIC
        if self.antibiotic:
            return Category.ANTIBIOTIC
        if self.immunological:
            return Category.IMMUNOLOGICAL
        return Category.STANDARD


class ProductsFileInvalid(Invalid):
    default_code = "products_file_invalid"


def read_products(text: Iterable[str]) -> list[Product]:
    """The products of a CSV (the columns of ``COLUMNS``, a header line first), or
    ``ProductsFileInvalid`` whose details list the errors as "line N: ..." (the first
    ``MAX_ERRORS``)."""
    rows = csv.reader(text)
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ProductsFileInvalid(
            "the first line must name the columns: " + ",".join(COLUMNS),
            details={"errors": ["line 1: the columns must be " + ",".join(COLUMNS)]},
        )
    products: list[Product] = []
    errors: list[str] = []
    ids: set[int] = set()
    names: set[tuple[str, str, str]] = set()
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        line = f"line {rows.line_num}"
        try:
            product = _product(row)
        except ValueError as error:
            errors.append(f"{line}: {error}")
            continue
        same = (fold(product.name), fold(product.strength), fold(product.form))
        if product.id in ids or same in names:
            errors.append(f"{line}: this id, or this name, strength and form, came before")
        ids.add(product.id)
        names.add(same)
        products.append(product)
    if errors or not products:
        errors = errors or ["the file lists no products"]
        raise ProductsFileInvalid(
            f"the products file has {len(errors)} error(s): {errors[0]}",
            details={"errors": errors[:MAX_ERRORS]},
        )
    return products


def _product(row: list[str]) -> Product:
    if len(row) != len(COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(COLUMNS)}")
    cells = dict(zip(COLUMNS, (cell.strip() for cell in row), strict=True))
    if not cells["id"].isdigit() or not 1 <= int(cells["id"]) < 2**31:
        raise ValueError("id must be a whole number from 1 to 2147483647")
    for column in _TEXTS:
        if not 1 <= len(cells[column]) <= MAX_TEXT:
            raise ValueError(f"{column} must have 1 to {MAX_TEXT} characters")
    packs = cells["pack_sizes"].split(";")
    if not all(p.strip().isdigit() and 1 <= int(p) <= MAX_PACK for p in packs):
        raise ValueError(f"pack_sizes must be whole numbers 1-{MAX_PACK}, separated by ';'")
    flags = {column: cells[column] for column in _FLAGS}
    if not all(value in ("0", "1") for value in flags.values()):
        raise ValueError("antibiotic ... long_term_eligible must be 0 or 1")
    on = {column: value == "1" for column, value in flags.items()}
    if on["long_term_eligible"] and (on["antibiotic"] or on["psychotropic_narcotic"]):
        raise ValueError("antibiotics and psychotropic or narcotic products are not long-term")
    return Product(
        id=int(cells["id"]),
        name=cells["name"],
        substance=cells["substance"],
        strength=cells["strength"],
        form=cells["form"],
        pack_sizes=tuple(sorted({int(p) for p in packs})),
        antibiotic=on["antibiotic"],
        psychotropic_narcotic=on["psychotropic_narcotic"],
        immunological=on["immunological"],
        long_term_eligible=on["long_term_eligible"],
    )


class Catalogue:
    """Products by id, and the search as the doctor types."""

    def __init__(self, products: Iterable[Product]) -> None:
        self._products = sorted(products, key=lambda p: (fold(p.name), p.strength, p.id))
        self._by_id = {p.id: p for p in self._products}

    def __len__(self) -> int:
        return len(self._products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._products)

    def get(self, product_id: int) -> Product | None:
        return self._by_id.get(product_id)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[Product]:
        """Products whose name, substance, strength or form hold every typed word, best
        first: the name starting with the first word, then the substance, then a word of
        either, then anywhere; at most ``limit`` (capped at ``SEARCH_MAX``)."""
        typed = query_words(query)
        if not typed:
            return []
        ranked: list[tuple[int, int, Product]] = []
        for order, product in enumerate(self._products):
            if all(word in product.folded.every for word in typed):
                ranked.append((_rank(product, typed[0]), order, product))
        ranked.sort(key=lambda found: found[:2])
        return [product for _, _, product in ranked[: max(1, min(limit, SEARCH_MAX))]]


def _rank(product: Product, first: str) -> int:
    folded = product.folded
    if folded.name.startswith(first):
        return 0
    if folded.substance.startswith(first):
        return 1
    if any(w.startswith(first) for w in folded.words):
        return 2
    return 3


@cache
def shipped_catalogue() -> Catalogue:
    """The catalogue shipped with the server, read once, on first use."""
    text = resources.files("consult.outcome").joinpath("data/products.csv").read_text("utf-8")
    return Catalogue(read_products(io.StringIO(text)))
