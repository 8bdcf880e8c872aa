"""`consult import-products FILE`, run as the operator would (a process of its own) against the
database of a running server, on each backend: a good file replaces the catalogue (new and
changed rows written, absent ones withdrawn) and the running server takes it up at its next
look (``CatalogueStore.refresh``, every minute); a bad file changes nothing and names its bad
lines, with exit status 1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from consult.app import SERVICES
from consult.outcome.products import COLUMNS, shipped_catalogue
from consult.storage import tables as t
from tests.support import consult_command, count, rows

HEADER = ",".join(COLUMNS)
SHIPPED = Path(__file__).resolve().parents[2] / "consult/outcome/data/products.csv"
ACARD = 241  # shipped: Acard 75 mg, packs of 30 or 60
INSULIN = 358
NEW_ID = 9001


async def run_import(database_url: str, path: Path) -> tuple[int, str, str]:
    """The command in a process of its own (the test's server keeps serving meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *consult_command(),
        "import-products",
        str(path),
        "--database-url",
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def shipped_line(product_id: int) -> str:
    lines = SHIPPED.read_text("utf-8").splitlines()
    (line,) = [row for row in lines if row.startswith(f"{product_id},")]
    return line


async def search(client: Any, query: str) -> list[dict[str, Any]]:
    found = await client.call("GET", f"/api/products?q={query}&limit=50")
    products: list[dict[str, Any]] = found["products"]
    return products


async def test_a_good_file_replaces_the_catalogue_and_the_running_server_takes_it_up(
    api, server: TestServer, database_url: str, tmp_path: Path
):
    doctor = await api("dr.house@demo.test")
    assert [p["id"] for p in await search(doctor, "aksef")] == [24, 25]  # shipped: 250, 500 mg
    shipped = len(shipped_catalogue())
    path = tmp_path / "products.csv"
    path.write_text(
        "\ufeff"  # a byte-order mark, as a spreadsheet saves "CSV UTF-8"
        + "\n".join(
            [
                HEADER,
                shipped_line(INSULIN),  # as shipped
                f"{ACARD},Acard,kwas acetylosalicylowy,75 mg,tabletki dojelitowe,30;60;90,0,0,0,1",
                f"{NEW_ID},Testoprofen Żółty,testoprofen,100 mg,tabletki,10;20,0,0,0,0",
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    status, out, err = await run_import(database_url, path)

    assert status == 0, err
    assert (
        f"imported 3 products from {path}: 1 new, 1 changed, 1 unchanged; "
        f"{shipped - 2} withdrawn (not in the file)"
    ) in out
    offered = t.products.c.withdrawn == sa.false()
    assert await count(database_url, t.products, offered) == 3
    assert await count(database_url, t.products, sa.not_(offered)) == shipped - 2
    # The server took the catalogue at start; it takes the import up at its next look.
    catalogue = server.app[SERVICES].outcome.catalogue
    assert await catalogue.refresh() is True
    assert await catalogue.refresh() is False  # nothing new since
    assert await search(doctor, "aksef") == []  # withdrawn
    (acard,) = await search(doctor, "acard")
    assert acard["pack_sizes"] == [30, 60, 90]
    (new,) = await search(doctor, "testoprofen")
    assert (new["id"], new["name"]) == (NEW_ID, "Testoprofen Żółty")

    # The shipped file again: the withdrawn rows come back, the others go.
    status, out, err = await run_import(database_url, SHIPPED)
    assert status == 0, err
    assert (
        f"imported {shipped} products from {SHIPPED}: 0 new, {shipped - 1} changed, "
        "1 unchanged; 1 withdrawn (not in the file)"
    ) in out
    assert await catalogue.refresh() is True
    assert [p["id"] for p in await search(doctor, "aksef")] == [24, 25]


async def test_a_bad_file_changes_nothing_and_names_its_lines(
    api, server: TestServer, database_url: str, tmp_path: Path
):
    before = await rows(database_url, t.products)
    path = tmp_path / "bad.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                f"{NEW_ID},Testoprofen,testoprofen,100 mg,tabletki,10,0,0,0,0",
                f"{NEW_ID + 1},Bad packs,x,1 mg,tabletki,10;zero,0,0,0,0",
                f"{NEW_ID + 2},Bad flag,x,1 mg,tabletki,10,2,0,0,0",
                "",
                f"{NEW_ID},Testoprofen again,testoprofen,100 mg,tabletki,10,0,0,0,0",
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    status, out, err = await run_import(database_url, path)

    assert status == 1 and out == ""
    assert f"consult: {path}: nothing imported: the products file has 3 error(s)" in err
    listed = [line.strip() for line in err.splitlines() if line.startswith("  line ")]
    assert listed == [
        "line 3: pack_sizes must be whole numbers 1-10000, separated by ';'",
        "line 4: antibiotic ... long_term_eligible must be 0 or 1",
        "line 6: this id, or this name, strength and form, came before",
    ]
    assert await rows(database_url, t.products) == before
    assert await server.app[SERVICES].outcome.catalogue.refresh() is False

    assert await rows(database_url, t.products) == before


async def test_a_file_that_cannot_be_read_is_refused_before_the_database_is_opened(
    tmp_path: Path,
):
    """Checked before anything else: the database named is not even created."""
    database = tmp_path / "untouched.db"
    url = f"sqlite+aiosqlite:///{database}"
    wrong_columns = tmp_path / "columns.csv"
    wrong_columns.write_text("id;name\n1;x\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "\n1,Żel,x,1 mg,żel,1,0,0,0,0\n").encode("iso-8859-2"))
    cases = [
        (wrong_columns, "line 1: the columns must be id,name,substance,strength,form,"),
        (latin, "is not UTF-8 text"),
        (tmp_path / "missing.csv", "cannot read"),
    ]
    for path, said in cases:
        status, out, err = await run_import(url, path)
        assert (status, out) == (1, ""), err
        assert said in err, err
    assert not database.exists()
