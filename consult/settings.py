"""Settings: frozen, read from ``CONSULT_*`` environment variables, overridable by the CLI.

The defaults are the embedded set-up: a SQLite file and the in-process bus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite+aiosqlite:///consult.db"
    # Empty: one process, in-memory Socket.IO manager. A redis:// URL: several processes.
    redis_url: str = ""
    # The Redis pub/sub channel of this deployment (several deployments may share one Redis).
    redis_channel: str = "consult"
    demo: bool = False
    web_dir: Path = REPO_ROOT / "web"
    session_hours: int = 12
    log_level: str = "INFO"
    # Cookies are marked Secure when the server sits behind TLS.
    secure_cookies: bool = False
    # Apply pending migrations when the server starts (``consult migrate`` does it on its own).
    migrate_on_start: bool = True
    # Walk-in queue rules (seconds unless said otherwise).
    offer_timeout: int = 20
    doctor_grace: int = 30
    patient_grace: int = 60
    max_parallel_chats: int = 3
    alternatives_threshold: int = 30 * 60
    alternatives_count: int = 5
    # Schedulers' dashboard: a queue whose longest wait exceeds this (seconds) is in breach.
    wait_breach: int = 15 * 60
    # How often expired offers and leases are looked for.
    sweep_interval: float = 1.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"CONSULT_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _parse(kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    return raw
