"""The feature services, built once by the composition root and shared by every edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from consult.accounts.recovery import Passwords
from consult.accounts.service import AccountService
from consult.accounts.signup import SignUp
from consult.accounts.throttle import login_throttle
from consult.archive.service import RecordArchive
from consult.audit import Audit
from consult.booking.hours import HoursService
from consult.booking.service import BookingService
from consult.calls.leases import RedisLeases
from consult.calls.node_link import Handler, NodeLink
from consult.calls.recordings import RecordingStore
from consult.calls.service import CallService
from consult.chat.service import ChatService
from consult.clock import Clock
from consult.dashboard.service import DashboardService
from consult.documents.file_store import DocumentStore
from consult.documents.service import DocumentService
from consult.events import EventBus
from consult.fhir.service import FhirExport
from consult.followups.service import FollowUpService
from consult.identity.verification import StaffCheck
from consult.media.host_address import MediaAddress
from consult.media.ice import IceConfig
from consult.notify.smtp import SmtpSender
from consult.notify.worker import OutboxWorker
from consult.outcome.catalogue_store import CatalogueStore
from consult.outcome.issued_service import IssuedDocuments
from consult.outcome.printing import Printing
from consult.outcome.renewals import RenewalService
from consult.outcome.service import OutcomeService
from consult.presence.processes import Processes
from consult.presence.service import PresenceService, new_process_id
from consult.queue.matcher import Matcher
from consult.queue.policy import QueueRules
from consult.queue.service import ConsultationService
from consult.queue.sweeper import Sweeper
from consult.queue.tickets import TicketService
from consult.ratings.service import RatingService
from consult.records.access_log import AccessLog
from consult.records.service import RecordService
from consult.results.service import ResultService
from consult.settings import Settings
from consult.shared_counters import SharedCounters, shared_counters
from consult.storage.uow import Database
from consult.timeline.service import Timeline


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    bus: EventBus
    audit: Audit
    accounts: AccountService
    signup: SignUp
    passwords: Passwords
    identity: StaffCheck
    outbox: OutboxWorker
    consultations: ConsultationService
    presence: PresenceService
    processes: Processes
    tickets: TicketService
    sweeper: Sweeper
    chat: ChatService
    records: RecordService
    access_log: AccessLog
    hours: HoursService
    booking: BookingService
    dashboard: DashboardService
    documents: DocumentService
    follow_ups: FollowUpService
    calls: CallService
    outcome: OutcomeService
    issued: IssuedDocuments
    renewals: RenewalService
    printing: Printing
    fhir: FhirExport
    archive: RecordArchive
    ratings: RatingService
    results: ResultService
    timeline: Timeline
    counters: SharedCounters

    @classmethod
    def build(cls, settings: Settings, clock: Clock, db: Database) -> Services:
        audit = Audit(db, clock)
        rules = queue_rules(settings)
        matcher = Matcher(clock, rules)
        consultations = ConsultationService(db, clock, audit, matcher)
        booking = BookingService(db, clock, audit)
        counters = shared_counters(settings)
        chat = chat_service(settings, clock, db, audit, consultations, counters)
        dead_after = timedelta(seconds=settings.process_dead_after)
        presence = PresenceService(
            db,
            clock,
            rules,
            matcher,
            consultations,
            process_id=new_process_id(),
            dead_after=dead_after,
        )
        processes = Processes(db, clock, presence, dead_after)
        documents = document_store(settings)
        calls = call_service(settings, clock, db, audit, consultations, presence.process_id)
        printing = Printing(db, clock, audit, settings.clinic_name)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            bus=db.bus,
            audit=audit,
            **account_services(settings, clock, db, audit, counters),
            consultations=consultations,
            presence=presence,
            processes=processes,
            tickets=TicketService(db, clock, rules, consultations, alternatives=booking.free_slots),
            sweeper=Sweeper(db, clock, rules, matcher, consultations, processes.reap),
            chat=chat,
            records=RecordService(db, clock, audit, consultations),
            access_log=AccessLog(db, audit),
            hours=HoursService(db, clock, audit, slot_days=settings.slot_days),
            booking=booking,
            dashboard=DashboardService(
                db, clock, audit, matcher, consultations, wait_breach=settings.wait_breach
            ),
            documents=DocumentService(db, clock, audit, documents, chat),
            follow_ups=FollowUpService(
                db, clock, audit, consultations, window_days=settings.follow_up_days
            ),
            calls=calls,
            outcome=OutcomeService(db, clock, audit, consultations, CatalogueStore(db)),
            issued=IssuedDocuments(db, clock, audit),
            renewals=RenewalService(db, clock, audit),
            printing=printing,
            fhir=FhirExport(db, clock, audit),
            archive=RecordArchive(db, clock, audit, documents, calls.recordings, printing),
            ratings=RatingService(db, clock, audit, consultations),
            results=ResultService(db, clock, audit, result_store(settings)),
            timeline=Timeline(db, clock, audit),
            counters=counters,
        )


def account_services(
    settings: Settings, clock: Clock, db: Database, audit: Audit, counters: SharedCounters
) -> dict[str, Any]:
    """Accounts, sign-up, passwords, identity verification and the notifications' outbox."""
    throttle = login_throttle(settings, counters)
    accounts = AccountService(db, clock, audit, settings.session_hours, throttle)
    links = settings.link_base()
    return {
        "accounts": accounts,
        "signup": SignUp(db, clock, audit, links),
        "passwords": Passwords(db, clock, audit, links, accounts.throttle),
        "identity": StaffCheck(db, clock, audit),
        "outbox": OutboxWorker(
            db, clock, SmtpSender.from_settings(settings), lease=settings.outbox_lease
        ),
    }


def chat_service(
    settings: Settings,
    clock: Clock,
    db: Database,
    audit: Audit,
    consultations: ConsultationService,
    counters: SharedCounters,
) -> ChatService:
    return ChatService(
        db,
        clock,
        audit,
        consultations,
        max_length=settings.chat_max_length,
        rate=settings.chat_rate,
        burst=settings.chat_burst,
        counters=counters,
    )


def call_service(
    settings: Settings,
    clock: Clock,
    db: Database,
    audit: Audit,
    consultations: ConsultationService,
    node: str,
) -> CallService:
    """Calls; with Redis, each call's owner node and the link to it (``node``: this process's
    id, as in ``server_processes``)."""
    leases: RedisLeases | None = None
    link: Callable[[Handler], NodeLink] | None = None
    if settings.redis_url:
        prefix = f"{settings.redis_channel}:"
        leases = RedisLeases(settings.redis_url, prefix, node, lease=settings.call_lease)
        timeout = settings.call_forward_timeout

        def link(handler: Handler) -> NodeLink:
            return NodeLink(settings.redis_url, prefix, node, handler, timeout=timeout)

    return CallService(
        db,
        clock,
        audit,
        consultations,
        ice=IceConfig.from_settings(settings),
        recordings=RecordingStore(settings.recordings_path(), web_root=settings.web_dir),
        address=MediaAddress.from_settings(settings),
        leases=leases,
        link=link,
        reconcile_every=settings.call_lease if settings.redis_url else 0.0,
    )


def document_store(settings: Settings) -> DocumentStore:
    return DocumentStore(settings.documents_path(), web_root=settings.web_dir)


def result_store(settings: Settings) -> DocumentStore:
    """The results' PDFs: a folder of their own inside the documents folder."""
    return DocumentStore(settings.documents_path() / "results", web_root=settings.web_dir)


def queue_rules(settings: Settings) -> QueueRules:
    return QueueRules(
        offer_timeout=timedelta(seconds=settings.offer_timeout),
        doctor_grace=timedelta(seconds=settings.doctor_grace),
        patient_grace=timedelta(seconds=settings.patient_grace),
        max_parallel_chats=settings.max_parallel_chats,
        alternatives_threshold=timedelta(seconds=settings.alternatives_threshold),
        alternatives_count=settings.alternatives_count,
        decline_exclusion=timedelta(seconds=settings.decline_exclusion),
    )
