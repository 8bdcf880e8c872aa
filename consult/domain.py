"""Vocabulary shared by every feature: roles, identity levels, forms, statuses, the actor."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    SCHEDULER = "scheduler"


class Identity(StrEnum):
    BASIC = "basic"
    VERIFIED = "verified"


class Form(StrEnum):
    CHAT = "chat"
    VOICE = "voice"
    VIDEO = "video"


class ConsultationStatus(StrEnum):
    WAITING = "waiting"
    # Offered to a doctor who has not accepted yet; back to waiting on decline or timeout.
    OFFERED = "offered"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


OPEN_STATUSES = (ConsultationStatus.WAITING, ConsultationStatus.OFFERED, ConsultationStatus.ACTIVE)
QUEUED_STATUSES = (ConsultationStatus.WAITING, ConsultationStatus.OFFERED)


class Client(StrEnum):
    """The kind of client an actor acts through, set at the edge that authenticated them and
    written to each audit row: the patient's access history shows it."""

    PAGE = "page"  # an HTTP request with the pages' session cookie
    API = "api"  # an HTTP request with a bearer token
    SOCKET = "socket"  # a Socket.IO connection


class PresenceStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Actor:
    """Who is acting, as established by the session; passed to every service call."""

    user_id: int
    role: Role
    identity: Identity
    name: str
    ip: str | None = None
    # None where no session names the client yet (a login).
    client: Client | None = None

    @property
    def is_patient(self) -> bool:
        return self.role is Role.PATIENT

    @property
    def is_doctor(self) -> bool:
        return self.role is Role.DOCTOR
