"""Per-user rate limits on every Socket.IO event and on the HTTP routes that read clinical data.

Each read is audited, so a client replaying one as fast as it can (``chat:resume`` a thousand
times a second) would fill the audit log and the database's writer. A token bucket per user
and per route or event refuses the excess at once, before any database work: HTTP answers 429
``rate_limited`` with ``Retry-After``, an event's ack ``{"ok": false, "error": {"code":
"rate_limited", "retry_after": ...}}``. A refusal reads nothing and is not audited.

The figures (docs/protocol.md, "Rate limits") are generous on purpose: the pages, the e2e tests
and the benchmarks never reach them; a client that loops does. Buckets run on real time (not
the service's clock, which tests move by hand), like the chat limit (consult/chat/limits.py):
in this process's memory, and in Redis too when it is configured, so that every process
counts one budget per user.
"""

from __future__ import annotations

from consult.chat.limits import RateLimiter, SharedLimiter
from consult.clock import SystemClock
from consult.settings import Settings
from consult.shared_counters import SharedCounters

# HTTP routes that read clinical data (a patient's consultations, messages, record, documents,
# bookings as a doctor sees them, recordings, the outcome's printouts, laboratory and imaging
# results, the scheduler's overview with patient names, ratings' comments).
# tests/integration/test_usage_limits.py fails when a GET route is in no set.
CLINICAL_READS = frozenset(
    {
        "/api/bookings",
        "/api/bookings/{booking_id}.ics",
        "/api/consultations/open",
        "/api/consultations/{consultation_id}",
        "/api/consultations/{consultation_id}/messages",
        "/api/consultations/{consultation_id}/recordings/{recording_id}",
        "/api/documents",
        "/api/documents/{document_id}/content",
        "/api/follow-ups",
        "/api/packages/{package_id}/printout.pdf",
        "/api/patients/me/record",
        "/api/patients/me/fhir",
        "/api/patients/me/timeline",
        "/api/patients/me/fhir/MedicationRequest",
        "/api/patients/me/ratings",
        "/api/patients/me/access-log",  # who saw the patient's data, audited as a read
        "/api/doctors/me/ratings",  # the comments patients wrote
        "/api/patients/me/issued",
        "/api/patients/me/results",
        "/api/patients/me/results/history",
        "/api/patients/{patient_id}/results",
        "/api/patients/{patient_id}/results/history",
        "/api/results/{result_id}/report.pdf",
        "/api/patients/{patient_id}/issued",
        "/api/identity/requests",  # patients' PESELs, audited as reads
        "/api/consultations/{consultation_id}/outcome",
        "/api/consultations/{consultation_id}/outcome/draft",
        "/api/patients/{patient_id}/documents",
        "/api/patients/{patient_id}/record",
        "/api/patients/{patient_id}/fhir",
        "/api/patients/{patient_id}/timeline",
        "/api/patients/{patient_id}/fhir/MedicationRequest",
        "/api/patients/{patient_id}/record/{consultation_id}/messages",
        "/api/queue/ticket",
        "/api/renewals",
        "/api/referrals/{referral_id}/printout.pdf",
        "/api/referrals/{referral_id}/slots",  # the referral's target, audited as a read
        "/api/scheduler/queues",
        "/api/sick-leaves/{sick_leave_id}/printout.pdf",
    }
)
# Clinical reads that read a whole record's files (the archive): a limit of their own, far
# below the reads' (CONSULT_ARCHIVE_PER_HOUR, CONSULT_ARCHIVE_BURST), instead of theirs.
HEAVY_READS = frozenset({"/api/patients/me/archive"})
# GET routes that read no clinical data: the catalogue, slots, doctors' hours, the system, the
# ratings' figures (counts and averages).
OTHER_READS = frozenset(
    {
        "/api/me",
        "/api/session",  # the pages' session probe (the user, or none)
        "/api/specialties",
        "/api/products",
        "/api/products/{product_id}",
        "/api/icd10",
        "/api/patients/me/pesel",
        "/api/me/sessions",
        "/api/me/identity",
        "/api/slots",
        "/api/doctors",
        "/api/doctors/{doctor_id}/schedule",
        "/api/scheduler/ratings",
        "/api/openapi.json",
        "/healthz",
        "/metrics",
    }
)
# Events that read clinical data take the reads' figures; every other event the events'.
READ_EVENTS = frozenset({"chat:resume"})
# chat:send has its own, per consultation (CONSULT_CHAT_RATE / CONSULT_CHAT_BURST): a second
# limit here would only hold back the chat benchmark, which raises that one.
OWN_LIMIT_EVENTS = frozenset({"chat:send"})


class UsageLimits:
    def __init__(self, settings: Settings, counters: SharedCounters) -> None:
        clock = SystemClock()
        reads = RateLimiter(clock, settings.read_rate, settings.read_burst, what="reads")
        events = RateLimiter(clock, settings.event_rate, settings.event_burst, what="events")
        per_second = settings.archive_per_hour / 3600
        archives = RateLimiter(clock, per_second, settings.archive_burst, what="archives")
        self.reads = SharedLimiter(reads, counters, "reads")
        self.events = SharedLimiter(events, counters, "events")
        self.archives = SharedLimiter(archives, counters, "archives")

    async def route(self, method: str, path: str, user_id: int) -> None:
        """Spend one of the user's tokens for this route, or raise ``RateLimited``."""
        if method != "GET":
            return
        if path in HEAVY_READS:
            await self.archives.take(path, user_id)
        elif path in CLINICAL_READS:
            await self.reads.take(path, user_id)

    async def event(self, name: str, user_id: int) -> None:
        """Spend one of the user's tokens for this event, or raise ``RateLimited``."""
        if name in READ_EVENTS:
            await self.reads.take(name, user_id)
        elif name not in OWN_LIMIT_EVENTS:
            await self.events.take(name, user_id)
