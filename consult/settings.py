"""Settings: frozen, read from ``CONSULT_*`` environment variables, overridable by the CLI.

The defaults are the embedded set-up: a SQLite file and the in-process bus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
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
    # Reverse proxies whose X-Forwarded-For is believed: comma-separated IP addresses and CIDR
    # networks (consult/edges/client_address.py). Empty: nobody, the peer is the client.
    trusted_proxies: str = ""
    # Apply pending migrations when the server starts (``consult migrate`` does it on its own).
    migrate_on_start: bool = True
    # Walk-in queue rules (seconds unless said otherwise).
    offer_timeout: int = 20
    doctor_grace: int = 30
    patient_grace: int = 60
    max_parallel_chats: int = 3
    alternatives_threshold: int = 30 * 60
    alternatives_count: int = 5
    # How long a doctor who declined a patient (or let the offer lapse) is not offered that
    # patient again; 0: they may be asked again at once.
    decline_exclusion: int = 5 * 60
    # Schedulers' dashboard: a queue whose longest wait exceeds this (seconds) is in breach.
    wait_breach: int = 15 * 60
    # How often expired offers and leases are looked for.
    sweep_interval: float = 1.0
    # Presence after a crash (consult/presence/processes.py): every process writes a heartbeat this
    # often (seconds; 0: never, tests), and the sweep of any other process counts a process
    # whose heartbeat is older than process_dead_after as dead: its connections are closed and
    # the grace periods start.
    heartbeat_interval: float = 5.0
    process_dead_after: float = 20.0
    # On SIGTERM: sockets close at once; HTTP requests in flight get this long (seconds) to
    # finish before they are cut off and the process exits.
    shutdown_timeout: float = 3.0
    # On SIGTERM, before that: seconds the process keeps serving while /healthz answers 503
    # draining, so that a load balancer takes it out first (consult/serving.py:stop); 0: none.
    drain_delay: float = 0.0
    # Seconds between checks that every socket's session still holds (logged out elsewhere,
    # expired); 0 turns the periodic check off (tests call it by hand).
    session_check_interval: float = 10.0
    # Slots are generated from the doctors' weekly hours for this many days ahead, at start-up
    # and then hourly (and at once when hours are added); 0 turns generation off.
    slot_days: int = 14
    # Media (consult/media/ice.py): comma-separated stun:/turn: URLs; TURN credentials are
    # derived from the secret (coturn use-auth-secret) and live turn_ttl seconds.
    stun_urls: str = ""
    turn_urls: str = ""
    turn_secret: str = field(default="", repr=False)
    turn_ttl: int = 3600
    # Where this node's media peers are reached (consult/media/host_address.py): the IP address
    # their ICE host candidates are gathered on (empty: every interface but loopback, as aioice
    # does), and the address written into the candidates instead when the node sits behind a
    # 1:1 NAT (a cloud machine's public IP; empty: media_address itself).
    media_address: str = ""
    media_public_address: str = ""
    # Calls across nodes (consult/calls/leases.py, node_link.py; with Redis only): each call's
    # media has an owner node holding a lease of call_lease seconds, renewed every third of it;
    # signalling that reaches another node is forwarded to the owner, which has
    # call_forward_timeout seconds to answer.
    call_lease: float = 5.0
    call_forward_timeout: float = 5.0
    # Chat limits: characters per message; messages per second per participant of a
    # consultation, with bursts of up to chat_burst (a token bucket in each process).
    chat_max_length: int = 4000
    chat_rate: float = 10.0
    chat_burst: int = 20
    # Login throttling (consult/accounts/throttle.py): failures free per account and per client
    # address, then a lock of login_delay seconds doubling per failure up to login_max_delay;
    # and how many password hashes (argon2, 64 MiB each) run at once in this process.
    login_free_attempts: int = 5
    login_address_free_attempts: int = 20
    login_delay: float = 1.0
    login_max_delay: float = 30.0
    password_hash_concurrency: int = 2
    # The origin(s) the pages are served from, comma-separated (https://consult.example.org);
    # cookie-authenticated requests that change state must come from one of them (consult/http/
    # same_origin.py). Empty: the request's own scheme://Host (from a trusted proxy: its
    # X-Forwarded-Proto and X-Forwarded-Host).
    public_origin: str = ""
    # Per-user rate limits (consult/usage_limits.py): requests per second, with bursts, per
    # HTTP route that reads clinical data and per clinical-read event (chat:resume), and per
    # other Socket.IO event (chat:send has chat_rate).
    read_rate: float = 10.0
    read_burst: int = 50
    event_rate: float = 20.0
    event_burst: int = 100
    # The record as one archive (GET /api/patients/me/archive) reads every file of the record:
    # its own limit per user, an hour's figure, with bursts.
    archive_per_hour: float = 6.0
    archive_burst: int = 3
    # Where uploaded medical documents are kept (never under web/). Empty: a folder beside the
    # SQLite file (consult.db -> consult-documents/), or ./consult-documents for PostgreSQL.
    documents_dir: str = ""
    # "Ask the doctor": how many days after a finished consultation follow-up questions go in.
    follow_up_days: int = 14
    # Where call recordings are written (never under web/). Empty: beside the SQLite file
    # (consult.db -> consult-recordings/), or ./consult-recordings for PostgreSQL.
    recordings_dir: str = ""
    # The event-loop watchdog (consult/watchdog.py): when the loop has not turned for this many
    # seconds, the stack of its thread is logged (a WARNING of consult.watchdog); 0: off.
    loop_watchdog_threshold: float = 1.0
    # Slow and numerous clients (consult/serving.py, for `consult serve`): seconds for a
    # request's headers (from the connection's opening or its previous response; also the
    # idle keep-alive time); seconds for a body, plus one per body_min_rate bytes received;
    # open connections per client address (trusted proxies exempt; 0: no cap).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    body_min_rate: int = 50_000
    max_connections_per_address: int = 256
    # SQLite (consult/storage/checkpoint.py): a thread checkpoints the WAL every this many
    # seconds, and as soon as the WAL file passes sqlite_wal_max_bytes.
    sqlite_checkpoint_interval: float = 5.0
    sqlite_wal_max_bytes: int = 16 * 1024 * 1024
    # A statement (or commit) taking longer than this many seconds is logged as a WARNING of
    # consult.storage.timing, by name (consult/storage/timing.py).
    slow_statement: float = 0.02
    # The clinic named on the outcome's printouts (prescriptions, referrals, sick leave).
    clinic_name: str = "consult demo clinic"
    # E-mail (consult/notify): the SMTP server; empty smtp_host: none, and notifications stay
    # in the outbox (logged) until one is configured. smtp_tls: starttls, tls (implicit, port
    # 465) or none. The outbox worker looks every outbox_interval seconds (0: never, tests)
    # and holds a claimed notification outbox_lease seconds before another may retry it.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = "consult <no-reply@consult.invalid>"
    outbox_interval: float = 2.0
    outbox_lease: float = 60.0
    # Where links in e-mails point (https://consult.example.org); empty: the first
    # public_origin, else http://host:port.
    public_url: str = ""

    def __post_init__(self) -> None:
        if self.loop_watchdog_threshold < 0:
            raise ValueError(
                "CONSULT_LOOP_WATCHDOG_THRESHOLD must be 0 (off) or more seconds, "
                f"not {self.loop_watchdog_threshold}"
            )
        if min(self.header_timeout, self.body_timeout, self.body_min_rate) <= 0:
            raise ValueError(
                "CONSULT_HEADER_TIMEOUT, CONSULT_BODY_TIMEOUT and CONSULT_BODY_MIN_RATE must be "
                "more than 0"
            )
        if self.archive_per_hour <= 0 or self.archive_burst < 1:
            raise ValueError(
                "CONSULT_ARCHIVE_PER_HOUR must be more than 0 and CONSULT_ARCHIVE_BURST at least 1"
            )
        if self.max_connections_per_address < 0:
            raise ValueError("CONSULT_MAX_CONNECTIONS_PER_ADDRESS must be 0 (no cap) or more")
        if self.heartbeat_interval > 0 and self.process_dead_after <= 2 * self.heartbeat_interval:
            raise ValueError(
                "CONSULT_PROCESS_DEAD_AFTER must exceed twice CONSULT_HEARTBEAT_INTERVAL: a "
                "live process missing one beat must not count as dead"
            )
        if not 0 <= self.slot_days <= 366:
            raise ValueError(f"CONSULT_SLOT_DAYS must be 0 to 366 days, not {self.slot_days}")
        if self.sqlite_checkpoint_interval <= 0 or self.sqlite_wal_max_bytes <= 0:
            raise ValueError(
                "CONSULT_SQLITE_CHECKPOINT_INTERVAL and CONSULT_SQLITE_WAL_MAX_BYTES must be "
                "more than 0"
            )
        if self.slow_statement <= 0:
            raise ValueError(
                f"CONSULT_SLOW_STATEMENT must be more than 0 seconds, not {self.slow_statement}"
            )
        if not 1 <= len(self.clinic_name.strip()) <= 200:
            raise ValueError("CONSULT_CLINIC_NAME must have 1 to 200 characters")
        if self.call_lease < 1 or self.call_forward_timeout <= 0:
            raise ValueError(
                "CONSULT_CALL_LEASE must be at least 1 second and CONSULT_CALL_FORWARD_TIMEOUT "
                "more than 0"
            )
        if self.drain_delay < 0:
            raise ValueError(
                f"CONSULT_DRAIN_DELAY must be 0 or more seconds, not {self.drain_delay}"
            )
        if self.smtp_tls not in ("starttls", "tls", "none"):
            raise ValueError(f"CONSULT_SMTP_TLS must be starttls, tls or none, not {self.smtp_tls}")
        if self.decline_exclusion < 0:
            raise ValueError(
                f"CONSULT_DECLINE_EXCLUSION must be 0 or more seconds, not {self.decline_exclusion}"
            )

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

    def link_base(self) -> str:
        """The origin links in e-mails start with."""
        first = self.public_origin.split(",")[0].strip()
        return (self.public_url or first or f"http://{self.host}:{self.port}").rstrip("/")

    def documents_path(self) -> Path:
        return (
            Path(self.documents_dir) if self.documents_dir else self._beside_database("documents")
        )

    def recordings_path(self) -> Path:
        return (
            Path(self.recordings_dir)
            if self.recordings_dir
            else self._beside_database("recordings")
        )

    def _beside_database(self, kind: str) -> Path:
        """``<db>-<kind>/`` beside the SQLite file; ``./consult-<kind>`` otherwise."""
        prefix = "sqlite+aiosqlite:///"
        database = self.database_url.removeprefix(prefix)
        if self.database_url.startswith(prefix) and database and ":memory:" not in database:
            db_file = Path(database)
            return db_file.parent / f"{db_file.stem}-{kind}"
        return Path(f"consult-{kind}")


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
