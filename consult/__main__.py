"""Command line: ``consult serve | migrate | demo-data | import-products FILE |
add-integration NAME | revoke-integration NAME | create-user``. Options override CONSULT_*
variables."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from consult import logs, runtime, serving
from consult.outcome.catalogue_store import CatalogueStore, Replaced
from consult.outcome.products import Product, ProductsFileInvalid, read_products
from consult.settings import Settings
from consult.storage.engine import DatabaseConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consult", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--database-url")
    serve.add_argument("--redis-url", help="redis://... to run several processes")
    serve.add_argument("--demo", action="store_true", default=None, help="seed demo data")
    for name, text in (("migrate", "apply database migrations"), ("demo-data", "seed demo data")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--database-url")
    products = sub.add_parser(
        "import-products",
        help="replace the products catalogue with a CSV file (migrates first; all or nothing)",
    )
    products.add_argument(
        "file", type=Path, metavar="FILE", help="CSV with the catalogue's columns"
    )
    products.add_argument("--database-url")
    for name, text in (
        ("add-integration", "a new credential for a system that sends results (shown once)"),
        ("revoke-integration", "revoke every credential of a system that sends results"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("name", metavar="NAME", help="the sending system, e.g. lab-central")
        cmd.add_argument("--database-url")
    user = sub.add_parser(
        "create-user", help="an account whose owner sets the password with a printed link"
    )
    user.add_argument("--role", required=True, choices=["patient", "doctor", "scheduler"])
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True)
    user.add_argument(
        "--specialty", action="append", default=[], help="a doctor's specialty code (repeat)"
    )
    user.add_argument("--database-url")
    return parser


_NOT_SETTINGS = ("command", "file", "name", "role", "email", "specialty")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    settings = Settings.from_env(**overrides)
    logs.configure(settings.log_level)
    try:
        if args.command == "serve":
            from consult.app import create_app

            runtime.tune()
            app = create_app(settings)
            runtime.started()
            print(f"consult on http://{settings.host}:{settings.port}", flush=True)
            serving.run(app, settings)
        elif args.command == "migrate":
            from consult.storage.migrate import upgrade

            upgrade(settings.database_url)
        elif args.command == "import-products":
            return _import_products(settings, args.file)
        elif args.command == "create-user":
            return asyncio.run(_create_user(settings, args))
        elif args.command in ("add-integration", "revoke-integration"):
            return asyncio.run(_integration(settings, args.command, args.name))
        else:
            asyncio.run(_seed(settings))
    except DatabaseConfigError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 2
    return 0


def _import_products(settings: Settings, path: Path) -> int:
    """Check the whole file first: a bad one changes nothing and names its bad lines."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:  # a BOM, as Excel writes
            products = read_products(file)
    except OSError as exc:
        print(f"consult: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(
            f"consult: {path} is not UTF-8 text ({exc.reason}); nothing imported", file=sys.stderr
        )
        return 1
    except ProductsFileInvalid as exc:
        print(f"consult: {path}: nothing imported: {exc.message}", file=sys.stderr)
        for error in exc.details["errors"]:
            print(f"  {error}", file=sys.stderr)
        return 1
    counts = asyncio.run(_replace_catalogue(settings, products))
    print(
        f"imported {len(products)} products from {path}: {counts.new} new, {counts.changed} "
        f"changed, {counts.unchanged} unchanged; {counts.withdrawn} withdrawn (not in the file)",
        flush=True,
    )
    return 0


async def _replace_catalogue(settings: Settings, products: list[Product]) -> Replaced:
    from consult.events import EventBus
    from consult.storage.engine import create_engine
    from consult.storage.migrate import upgrade_async
    from consult.storage.uow import Database

    await upgrade_async(settings.database_url)
    db = Database(create_engine(settings.database_url), EventBus())
    try:
        return await CatalogueStore(db).replace(products)
    finally:
        await db.dispose()


async def _integration(settings: Settings, command: str, name: str) -> int:
    from consult.clock import SystemClock
    from consult.events import EventBus
    from consult.results.integrations import IntegrationCredentials
    from consult.storage.engine import create_engine
    from consult.storage.migrate import upgrade_async
    from consult.storage.uow import Database

    await upgrade_async(settings.database_url)
    db = Database(create_engine(settings.database_url), EventBus())
    credentials = IntegrationCredentials(db, SystemClock())
    try:
        if command == "revoke-integration":
            revoked = await credentials.revoke(name)
            print(f"revoked {revoked} credential(s) of {name.strip()!r}", flush=True)
            return 0 if revoked else 1
        integration_id, token = await credentials.add(name)
    except ValueError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(
        f"integration {name.strip()!r} (credential {integration_id}): its token, shown once "
        f"(consult keeps only its hash):\n{token}\n"
        "The system posts results to /api/integration/fhir with Authorization: Bearer <token>.",
        flush=True,
    )
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    from consult.accounts.operators import create_user
    from consult.clock import SystemClock
    from consult.domain import Role
    from consult.errors import Invalid
    from consult.events import EventBus
    from consult.storage.engine import create_engine
    from consult.storage.migrate import upgrade_async
    from consult.storage.uow import Database

    await upgrade_async(settings.database_url)
    db = Database(create_engine(settings.database_url), EventBus())
    try:
        user_id, link = await create_user(
            db,
            SystemClock(),
            settings.link_base(),
            Role(args.role),
            args.email,
            args.name,
            args.specialty,
        )
    except (ValueError, Invalid) as exc:
        print(f"consult: {getattr(exc, 'message', exc)}; nothing created", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(
        f"{args.role} {args.email.strip().lower()} created (user {user_id}). Their one-time "
        f"link to set a password (valid 72 hours):\n{link}",
        flush=True,
    )
    return 0


async def _seed(settings: Settings) -> None:
    from consult.clock import SystemClock
    from consult.demo import seed_demo
    from consult.events import EventBus
    from consult.storage.engine import create_engine
    from consult.storage.migrate import upgrade_async
    from consult.storage.uow import Database

    await upgrade_async(settings.database_url)
    db = Database(create_engine(settings.database_url), EventBus())
    try:
        await seed_demo(db, SystemClock())
    finally:
        await db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
