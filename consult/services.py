"""The feature services, built once by the composition root and shared by every edge."""

from __future__ import annotations

from dataclasses import dataclass

from consult.accounts.service import AccountService
from consult.chat.service import ChatService
from consult.clock import Clock
from consult.events import EventBus
from consult.queue.service import ConsultationService
from consult.records.audit import Audit
from consult.records.service import RecordService
from consult.settings import Settings
from consult.storage.uow import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    bus: EventBus
    audit: Audit
    accounts: AccountService
    consultations: ConsultationService
    chat: ChatService
    records: RecordService

    @classmethod
    def build(cls, settings: Settings, clock: Clock, db: Database) -> Services:
        audit = Audit(db, clock)
        consultations = ConsultationService(db, clock, audit)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            bus=db.bus,
            audit=audit,
            accounts=AccountService(db, clock, audit, settings.session_hours),
            consultations=consultations,
            chat=ChatService(db, clock, audit, consultations),
            records=RecordService(db, clock, audit, consultations),
        )
