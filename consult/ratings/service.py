"""Ratings: the patient rates a finished consultation or a past booked visit, and the service;
once each, changeable for CHANGE_DAYS days (PUT: a second rating is that change). Schedulers
read the figures of the last FIGURES_DAYS days (pushed live as they move); a doctor reads their
own figures and the comments, which name no patient. Writes and reads of ratings are audited.

The visit's row is locked while its rating is stored, so that two requests for one visit
(two tabs) store one rating, the second a change of the first.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from consult.audit import Audit
from consult.booking.policy import BookingStatus
from consult.clock import Clock, as_utc
from consult.dashboard.service import check_scheduler
from consult.domain import Actor, ConsultationStatus
from consult.errors import Conflict, NotAllowed, NotFound
from consult.events import RatingStored
from consult.queue.service import ConsultationService, check_doctor
from consult.ratings import repository as repo
from consult.ratings.figures import counts_of, kind_figures, summarise
from consult.ratings.policy import (
    COMMENTS_SHOWN,
    FIGURES_DAYS,
    RatingKind,
    Visit,
    check_changeable,
    check_visit_over,
)
from consult.ratings.schemas import DoctorRatingsOut, RatingIn, RatingOut, RatingsSummaryOut
from consult.storage.retry import retry_transient
from consult.storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

RATE = "rating.rate"
CHANGE = "rating.change"
READ = "rating.read"


def check_patient(actor: Actor) -> None:
    # Any patient, basic or verified: a basic account books visits too, and rates them.
    if not actor.is_patient:
        raise NotAllowed("only patients rate their visits", code="not_a_patient")


class RatingService:
    def __init__(
        self, db: Database, clock: Clock, audit: Audit, consultations: ConsultationService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._consultations = consultations
        self.window = timedelta(days=FIGURES_DAYS)

    @retry_transient()
    async def rate_consultation(
        self, actor: Actor, consultation_id: int, kind: RatingKind, rating: RatingIn
    ) -> tuple[RatingOut, bool]:
        """Rate the patient's finished consultation (``kind``: consultation or service).
        Returns the rating and whether it is new."""
        check_patient(actor)
        async with self._db.uow() as uow:
            row = await self._consultations.participant_row(uow, actor, consultation_id, RATE)
            if row.status != ConsultationStatus.ENDED or row.doctor_id is None:
                raise Conflict(
                    "a consultation is rated once it has ended, with a doctor",
                    code="consultation_not_finished",
                )
            visit = Visit(
                patient_id=row.patient_id,
                doctor_id=row.doctor_id,
                specialty_code=row.specialty_code,
                consultation_id=consultation_id,
            )
            return await self._store(uow, actor, visit, kind, rating)

    @retry_transient()
    async def rate_booking(
        self, actor: Actor, booking_id: int, kind: RatingKind, rating: RatingIn
    ) -> tuple[RatingOut, bool]:
        """Rate the patient's booked visit once its slot is over (``kind``: booking or
        service). Returns the rating and whether it is new."""
        check_patient(actor)
        async with self._db.uow() as uow:
            row = await repo.lock_booking(uow, booking_id)
            if row is None:
                raise NotFound(f"no booking {booking_id}", code="booking_not_found")
            if row.patient_id != actor.user_id:
                self._audit.deny_after_rollback(uow, actor, RATE, patient_id=row.patient_id)
                raise NotAllowed("this is not your booking", code="not_your_booking")
            if row.status != BookingStatus.ACTIVE:
                raise Conflict("a cancelled visit is not rated", code="booking_cancelled")
            check_visit_over(as_utc(row.ends_at), self._clock.now())
            visit = Visit(
                patient_id=row.patient_id,
                doctor_id=row.doctor_id,
                specialty_code=row.specialty_code,
                booking_id=booking_id,
            )
            return await self._store(uow, actor, visit, kind, rating)

    async def _store(
        self, uow: UnitOfWork, actor: Actor, visit: Visit, kind: RatingKind, rating: RatingIn
    ) -> tuple[RatingOut, bool]:
        """Give the rating, or change the one given: nothing is written (or audited, or
        pushed) when it says what it said already, even once it is final."""
        now = self._clock.now()
        stored = await repo.find(uow, visit, kind)
        if stored is not None and (stored.score, stored.comment) == (rating.score, rating.comment):
            return stored, False
        if stored is None:
            rating_id = await repo.insert(uow, visit, kind, rating.score, rating.comment, now)
            action = RATE
        else:
            check_changeable(stored.rated_at, now)
            rating_id = stored.id
            await repo.change(uow, rating_id, rating.score, rating.comment, now)
            action = CHANGE
        await self._audit.write(
            uow,
            actor,
            action,
            patient_id=visit.patient_id,
            consultation_id=visit.consultation_id,
            detail=visit.audit_detail(kind),
        )
        out = await repo.load(uow, rating_id)
        uow.collect(RatingStored(visit.doctor_id, visit.specialty_code))
        await uow.commit()
        log.info("%s: %s %s (visit of doctor %s)", action, kind, rating_id, visit.doctor_id)
        return out, stored is None

    async def of_patient(self, actor: Actor) -> list[RatingOut]:
        """The patient's own ratings, newest first."""
        check_patient(actor)
        async with self._db.uow() as uow:
            found = await repo.of_patient(uow, actor.user_id)
            await self._audit.write(uow, actor, READ, patient_id=actor.user_id)
            await uow.commit()
        return found

    async def summary(self) -> RatingsSummaryOut:
        """The figures of the last FIGURES_DAYS days, per specialty and per doctor (no
        patient data: not audited)."""
        now = self._clock.now()
        since = now - self.window
        async with self._db.reader() as uow:
            tallies = await repo.tallies(uow, since)
        return summarise(tallies, since, now)

    async def summary_for(self, actor: Actor) -> RatingsSummaryOut:
        check_scheduler(actor)
        return await self.summary()

    async def of_doctor(self, actor: Actor) -> DoctorRatingsOut:
        """The doctor's own figures and comments: the read of each patient's comment is
        audited, though the doctor is not told whose it is."""
        check_doctor(actor)
        now = self._clock.now()
        since = now - self.window
        async with self._db.uow() as uow:
            tallies = await repo.tallies(uow, since, actor.user_id)
            comments = await repo.comments(uow, actor.user_id, since, COMMENTS_SHOWN)
            await self._audit.reads(uow, actor, READ, (pid for pid, _ in comments))
            await uow.commit()
        return DoctorRatingsOut(
            since=since,
            until=now,
            figures=kind_figures(counts_of(tallies)),
            comments=[comment for _, comment in comments],
        )
