"""The access matrix: one row per HTTP route and Socket.IO event, one cell per column of
tests/matrix/cells.py (its docstring says how to write a cell). docs/security.md shows it
(``scripts/access-matrix`` writes it there); tests/integration/test_access_matrix.py walks it
against a server with real data on each backend.

Adding a route or an event: add its ``row(...)`` here (the test says what the server answered
each column, in this syntax), then run ``scripts/access-matrix``. A row that sends a body also
needs it in tests/matrix/walk.py (BODIES or PAYLOADS), and one whose allowed call uses its
target up (ends, cancels, answers it) a fresh target per allowed column in tests/matrix/world.py.
"""

from __future__ import annotations

from tests.matrix.cells import Row, row

ROWS: list[Row] = [
    row("GET /healthz", "none", "ok ok ok - - ok ok ok ok ok"),
    row("GET /api/openapi.json", "none", "ok ok ok - - ok ok ok ok ok"),
    row(
        "POST /api/login",
        "none",
        "A A A - - A A A A A",
        action="session.login",
        note=(
            "each column logs in with its own email and password; anonymous, with the "
            "verified patient's. A failed login is audited too (`session.login`, denied)."
        ),
    ),
    row(
        "POST /api/logout",
        "none",
        "401 ok ok - - ok ok ok ok ok",
        note="each cell ends a second session of its column's person.",
    ),
    row("GET /api/me", "own", "401 ok ok ok ok ok ok ok ok ok"),
    row("GET /api/session", "own", "ok ok ok ok ok ok ok ok ok ok"),
    row("GET /api/specialties", "none", "401 ok ok - - ok ok ok ok ok"),
    row(
        "POST /api/consultations",
        "none",
        "401 403:identity_not_verified A - - x x x x x",
        x="403:not_a_patient",
        action="consultation.start",
        note=(
            "the verified patient's call is a fresh patient's (one open consultation per patient)."
        ),
    ),
    row(
        "GET /api/queue/ticket",
        "ticket",
        "401 x x ok x x x x x x",
        x="404:no_ticket",
        note=(
            "the caller's own ticket: 404 `no_ticket` for whoever waits in no queue, doctors too."
        ),
    ),
    row(
        "POST /api/consultations/{consultation_id}/accept",
        "offer",
        "401 x x x x y y y A x",
        x="403:not_a_doctor",
        y="409:no_such_offer",
        action="consultation.accept",
    ),
    row(
        "POST /api/consultations/{consultation_id}/decline",
        "offer",
        "401 x x x x y y y ok x",
        x="403:not_a_doctor",
        y="409:no_such_offer",
        note=(
            "a decline reads nothing: not audited (an accept is: it gives the doctor the "
            "consultation)."
        ),
    ),
    row(
        "GET /api/consultations/open",
        "own",
        "401 ok ok ok ok A ok ok A ok",
        action="consultation.read",
        note=(
            "a doctor's list is audited (a row per consultation it shows); the doctor only "
            "offered sees the tickets offered to them now, other patients', never the "
            "owner's."
        ),
    ),
    row(
        "GET /api/consultations/{consultation_id}",
        "active",
        "401 x x A x A x x x x",
        x="403:not_participant",
        action="consultation.read",
    ),
    row(
        "POST /api/consultations/{consultation_id}/end",
        "active",
        "401 x x A x A x x x x",
        x="403:not_participant",
        action="consultation.end",
    ),
    row(
        "GET /api/consultations/{consultation_id}/messages",
        "active",
        "401 x x A x A x x x x",
        x="403:not_participant",
        action="chat.read",
    ),
    row(
        "POST /api/consultations/{consultation_id}/recommendations",
        "active",
        "401 x x 403:not_the_doctor x A x x x x",
        x="403:not_participant",
        action="record.recommendation.write",
    ),
    row(
        "GET /api/patients/me/record",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="record.read",
    ),
    row(
        "GET /api/patients/{patient_id}/record",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="record.read",
    ),
    row(
        "GET /api/patients/{patient_id}/record/{consultation_id}/messages",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="record.read",
    ),
    row(
        "GET /api/patients/me/access-log",
        "own",
        "401 A A A A x x x x x",
        x="403:not_a_patient",
        action="access_log.read",
    ),
    row(
        "GET /api/patients/me/archive",
        "own",
        "401 A A A A x x x x x",
        x="403:not_a_patient",
        action="record.archive.read",
        note="a ZIP: the walk looks for the owner's strings in every file of it.",
    ),
    row("GET /api/slots", "none", "401 ok ok - - ok ok ok ok ok"),
    row(
        "POST /api/slots",
        "none",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="slot.open",
    ),
    row(
        "POST /api/bookings",
        "slot",
        "401 A A - - x x x x x",
        x="403:not_a_patient",
        action="booking.create",
        note="each allowed call books a free slot of its own, as a patient of its own.",
    ),
    row(
        "GET /api/referrals/{referral_id}/slots",
        "referral",
        "401 y y A y x x x x x",
        x="403:not_a_patient",
        y="404:referral_not_found",
        action="referral.slots.read",
    ),
    row(
        "GET /api/bookings",
        "own",
        "401 ok ok A ok A ok ok ok 403:not_a_patient",
        action="booking.read",
        note=(
            "a patient's own bookings; a doctor's, the visits booked with them (audited when "
            "there are any)."
        ),
    ),
    row(
        "POST /api/bookings/{booking_id}/cancel",
        "booking",
        "401 x x A x x x x x x",
        x="403:not_your_booking",
        action="booking.cancel",
    ),
    row(
        "GET /api/bookings/{booking_id}.ics",
        "booking",
        "401 x x A x A x x x x",
        x="403:not_your_booking",
        action="booking.read",
    ),
    row("GET /api/doctors", "none", "401 x x - - x x x x ok", x="403:not_a_scheduler"),
    row(
        "GET /api/doctors/{doctor_id}/schedule",
        "hours",
        "401 x x - - ok x x x ok",
        x="403:not_your_schedule",
    ),
    row(
        "POST /api/doctors/{doctor_id}/schedule",
        "hours",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="schedule.add",
    ),
    row(
        "DELETE /api/doctors/{doctor_id}/schedule/{schedule_id}",
        "hours",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="schedule.remove",
    ),
    row(
        "GET /api/scheduler/queues",
        "none",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="queue.overview.read",
    ),
    row(
        "POST /api/scheduler/tickets/{consultation_id}/move",
        "ticket",
        "401 x x x x x x x x A",
        x="403:not_a_scheduler",
        action="scheduler.move",
    ),
    row(
        "POST /api/scheduler/tickets/{consultation_id}/drop",
        "ticket",
        "401 x x x x x x x x A",
        x="403:not_a_scheduler",
        action="scheduler.drop",
    ),
    row(
        "POST /api/scheduler/doctors/{doctor_id}/away",
        "doctor",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="scheduler.doctor_away",
    ),
    row(
        "GET /metrics",
        "none",
        "401 x x - - x x x x A",
        x="403:not_a_scheduler",
        action="queue.overview.read",
        note=(
            "from loopback with no forwarding header it answers anyone (the operator's "
            "scrape, docs/operations.md); every cell here comes through the proxy."
        ),
    ),
    row(
        "POST /api/documents",
        "none",
        "401 403:identity_not_verified A - - x x x x x",
        x="403:not_a_patient",
        action="document.upload",
    ),
    row(
        "GET /api/documents",
        "own",
        "401 403:identity_not_verified A A A x x x x x",
        x="403:not_a_patient",
        action="document.list",
    ),
    row(
        "GET /api/patients/{patient_id}/documents",
        "patient",
        "401 x x A x A x x x x",
        x="404:patient_not_found",
        action="document.list",
    ),
    row(
        "GET /api/documents/{document_id}/content",
        "document",
        "401 x x A x A x x x x",
        x="403:not_your_document",
        action="document.read",
    ),
    row(
        "DELETE /api/documents/{document_id}",
        "document",
        "401 403:identity_not_verified y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_your_document",
        action="document.delete",
    ),
    row(
        "POST /api/consultations/{consultation_id}/documents",
        "active",
        "401 403:identity_not_verified y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_your_document",
        action="chat.write",
        note="shares the owner's document into the active consultation (a chat message).",
    ),
    row(
        "POST /api/consultations/{consultation_id}/follow-ups",
        "ended",
        "401 403:identity_not_verified y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_participant",
        action="follow_up.ask",
    ),
    row(
        "GET /api/follow-ups",
        "own",
        "401 ok ok A ok ok A ok ok 403:not_allowed",
        action="follow_up.read",
    ),
    row(
        "POST /api/follow-ups/{follow_up_id}/answer",
        "follow-up",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_your_follow_up",
        action="follow_up.answer",
    ),
    row(
        "GET /api/consultations/{consultation_id}/recordings/{recording_id}",
        "recording",
        "401 x x A x x A x x x",
        x="403:not_participant",
        action="call.recording.read",
    ),
    row("GET /api/products", "none", "401 x x - - ok ok ok ok x", x="403:not_a_doctor"),
    row(
        "GET /api/products/{product_id}",
        "product",
        "401 x x - - ok ok ok ok x",
        x="403:not_a_doctor",
    ),
    row("GET /api/icd10", "none", "401 x x - - ok ok ok ok x", x="403:not_a_doctor"),
    row(
        "GET /api/consultations/{consultation_id}/outcome/draft",
        "active",
        "401 x x x x A y y y x",
        x="403:not_a_doctor",
        y="403:not_participant",
        action="outcome.draft.read",
    ),
    row(
        "PUT /api/consultations/{consultation_id}/outcome/draft",
        "active",
        "401 x x x x A y y y x",
        x="403:not_a_doctor",
        y="403:not_participant",
        action="outcome.draft.write",
    ),
    row(
        "POST /api/consultations/{consultation_id}/outcome",
        "active",
        "401 x x x x A y y y x",
        x="403:not_a_doctor",
        y="403:not_participant",
        action="outcome.issue",
    ),
    row(
        "GET /api/consultations/{consultation_id}/outcome",
        "ended",
        "401 x x A x x A x x x",
        x="403:not_participant",
        action="outcome.read",
    ),
    row(
        "GET /api/patients/me/issued",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="outcome.documents.read",
    ),
    row(
        "GET /api/patients/{patient_id}/issued",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="outcome.documents.read",
    ),
    row("GET /api/patients/me/pesel", "own", "401 ok ok ok ok ok ok ok ok ok"),
    row(
        "PUT /api/patients/me/pesel",
        "own",
        "401 A A A A x x x x x",
        x="403:not_a_patient",
        action="profile.pesel.write",
    ),
    row(
        "POST /api/prescriptions/{document_id}/cancel",
        "prescription",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_the_issuing_doctor",
        action="outcome.prescription.cancel",
    ),
    row(
        "POST /api/referrals/{document_id}/cancel",
        "referral",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_the_issuing_doctor",
        action="outcome.referral.cancel",
    ),
    row(
        "POST /api/sick-leaves/{document_id}/cancel",
        "sick-leave",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_the_issuing_doctor",
        action="outcome.sick_leave.cancel",
    ),
    row(
        "POST /api/prescriptions/{prescription_id}/renewal",
        "prescription",
        "401 y y ok y x x x x x",
        x="403:not_a_patient",
        y="404:prescription_not_found",
        note=(
            "the owner's request for this prescription is open already: answered 200 with it, "
            "and not audited again."
        ),
    ),
    row("GET /api/renewals", "own", "401 ok ok A ok ok A ok ok A", action="renewal.read"),
    row(
        "POST /api/renewals/{renewal_id}/approve",
        "renewal",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_your_renewal",
        action="renewal.approve",
    ),
    row(
        "POST /api/renewals/{renewal_id}/decline",
        "renewal",
        "401 x x x x y A y y x",
        x="403:not_a_doctor",
        y="403:not_your_renewal",
        action="renewal.decline",
    ),
    row(
        "POST /api/renewals/{renewal_id}/reassign",
        "renewal",
        "401 x x x x x x x x A",
        x="403:not_a_scheduler",
        action="renewal.reassign",
    ),
    row(
        "GET /api/packages/{package_id}/printout.pdf",
        "package",
        "401 x x A x A A x x x",
        x="404:package_not_found",
        action="outcome.printout.read",
    ),
    row(
        "GET /api/referrals/{referral_id}/printout.pdf",
        "referral",
        "401 x x A x A A x x x",
        x="404:referral_not_found",
        action="outcome.printout.read",
    ),
    row(
        "GET /api/sick-leaves/{sick_leave_id}/printout.pdf",
        "sick-leave",
        "401 x x A x A A x x x",
        x="404:sick_leave_not_found",
        action="outcome.printout.read",
    ),
    row(
        "GET /api/patients/me/fhir",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="record.fhir.read",
    ),
    row(
        "GET /api/patients/me/fhir/MedicationRequest",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="record.fhir.read",
    ),
    row(
        "GET /api/patients/me/timeline",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="record.timeline.read",
    ),
    row(
        "GET /api/patients/{patient_id}/timeline",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="record.timeline.read",
    ),
    row(
        "GET /api/patients/{patient_id}/fhir",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="record.fhir.read",
    ),
    row(
        "GET /api/patients/{patient_id}/fhir/MedicationRequest",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="record.fhir.read",
    ),
    row(
        "POST /api/integration/fhir",
        "patient",
        "401 x x x x x x x x x",
        x="401:invalid_credential",
        action="result.receive",
        note=(
            "a laboratory's bundle about the owner (by PESEL). The route takes an integration "
            "credential, never a session: every session is refused 401 `invalid_credential`, "
            "not audited (no sending system to name). The world's laboratory posts the "
            "owner's result with its credential (201, audited `result.receive`, role "
            "`integration`), and the test checks that credential reads nothing: every GET "
            "row answers it 401 `session_expired` (one open to anonymous callers, as it "
            "answers them), unaudited and with none of the owner's strings, and Socket.IO "
            "refuses it."
        ),
    ),
    row(
        "GET /api/patients/me/results",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="result.read",
    ),
    row(
        "GET /api/patients/me/results/history",
        "own",
        "401 A A A A x x x x x",
        x="404:patient_not_found",
        action="result.read",
    ),
    row(
        "GET /api/patients/{patient_id}/results",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="result.read",
    ),
    row(
        "GET /api/patients/{patient_id}/results/history",
        "patient",
        "401 x x A x A A x x x",
        x="404:patient_not_found",
        action="result.read",
    ),
    row(
        "GET /api/results/{result_id}/report.pdf",
        "result",
        "401 x x A x A A x x x",
        x="404:result_not_found",
        action="result.read",
    ),
    row(
        "PUT /api/consultations/{consultation_id}/rating",
        "ended",
        "401 y y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_participant",
        action="rating.change",
        note="the owner rated it already: this is a change (200).",
    ),
    row(
        "PUT /api/consultations/{consultation_id}/service-rating",
        "ended",
        "401 y y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_participant",
        action="rating.rate",
    ),
    row(
        "PUT /api/bookings/{booking_id}/rating",
        "visit",
        "401 y y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_your_booking",
        action="rating.change",
        note="the owner rated it already: this is a change (200).",
    ),
    row(
        "PUT /api/bookings/{booking_id}/service-rating",
        "visit",
        "401 y y A y x x x x x",
        x="403:not_a_patient",
        y="403:not_your_booking",
        action="rating.rate",
    ),
    row(
        "GET /api/patients/me/ratings",
        "own",
        "401 A A A A x x x x x",
        x="403:not_a_patient",
        action="rating.read",
    ),
    row("GET /api/scheduler/ratings", "none", "401 x x - - x x x x ok", x="403:not_a_scheduler"),
    row(
        "GET /api/doctors/me/ratings",
        "own",
        "401 x x x x A A ok ok x",
        x="403:not_a_doctor",
        action="rating.read",
    ),
    row(
        "presence:online",
        "none",
        "401 x x - - ok ok ok ok x",
        x="not_a_doctor",
        note=(
            "each doctor goes online for their own specialties. The presence rows run after "
            "all others (going offline or away hands a doctor's offers back to the queue)."
        ),
    ),
    row("presence:offline", "none", "401 x x - - ok ok ok ok x", x="not_a_doctor"),
    row("presence:away", "none", "401 x x - - ok ok ok ok x", x="not_a_doctor"),
    row(
        "queue:ticket",
        "ticket",
        "401 ok ok ok ok ok ok ok ok ok",
        note="the caller's own ticket (null for whoever waits in no queue).",
    ),
    row(
        "queue:accept",
        "offer",
        "401 x x x x y y y A x",
        x="not_a_doctor",
        y="no_such_offer",
        action="consultation.accept",
    ),
    row("queue:decline", "offer", "401 x x x x y y y ok x", x="not_a_doctor", y="no_such_offer"),
    row("chat:send", "active", "401 x x A x A x x x x", x="not_participant", action="chat.write"),
    row("chat:resume", "active", "401 x x A x A x x x x", x="not_participant", action="chat.read"),
    row("chat:read", "active", "401 x x A x A x x x x", x="not_participant", action="chat.receipt"),
    row("chat:typing", "active", "401 x x ok x ok x x x x", x="not_participant"),
    row("call:config", "active", "401 x x A x A x x x x", x="not_participant", action="call.read"),
    row(
        "call:offer",
        "active",
        "401 x x ~media_bad_sdp x ~media_bad_sdp x x x x",
        x="not_participant",
        note=(
            "the test sends a junk SDP: the consultation's two get `media_bad_sdp` (a real "
            "offer is walked in test_calls.py), anyone else `not_participant` whatever the "
            "SDP."
        ),
    ),
    row(
        "call:hangup",
        "active",
        "401 x x A x A x x x x",
        x="not_participant",
        action="call.form",
        note="each allowed call hangs up a voice call of its own.",
    ),
    row(
        "call:form",
        "active",
        "401 x x A x A x x x x",
        x="not_participant",
        action="call.form",
        note="each allowed call switches a chat of its own to voice (at once).",
    ),
    row(
        "call:form-answer",
        "active",
        "401 x x A x A x x x x",
        x="not_participant",
        action="call.form",
        note="each allowed call accepts a switch to video that the other side asked for.",
    ),
    row(
        "call:record-consent",
        "active",
        "401 x x A x A x x x x",
        x="not_participant",
        action="call.recording.consent",
    ),
]
