"""Sign-up as a basic account, the e-mail's confirmation link, and what an unconfirmed
account may not do; the booking confirmation e-mail with its .ics. A real SMTP server
(aiosmtpd) receives the e-mails; every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from icalendar import Calendar

from consult.storage import tables as t
from tests.integration.accounts_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    mail_fixture,
    mail_server_fixture,
    sign_up,
    signed_up_and_confirmed,
)
from tests.mail_server import body, link_token
from tests.support import count, rows

EMAIL = "ewa@example.org"


async def test_sign_up_confirm_then_book_with_the_ics_by_e_mail(api, mail, database_url):
    anonymous = await api()
    answer = await sign_up(anonymous, " Ewa@Example.org ")
    assert answer == {"status": "check_your_email"}
    message = await mail.wait(EMAIL)
    assert message["Subject"] == "Confirm your e-mail address"
    ewa = await (await api()).login(EMAIL, PASSWORD)
    assert ewa.user["identity"] == "basic" and ewa.user["email_confirmed"] is False
    slot = (await ewa.call("GET", "/api/slots?specialty=dermatology"))["slots"][0]
    refused = await ewa.call("POST", "/api/bookings", {"slot_id": slot["id"]}, expect=403)
    assert refused["error"]["code"] == "email_not_confirmed"
    assert await count(database_url, t.bookings) == 0

    token = link_token(message)
    await anonymous.call("POST", "/api/signup/confirm", {"token": token}, expect=204)
    again = await anonymous.call("POST", "/api/signup/confirm", {"token": token}, expect=400)
    assert again["error"]["code"] == "token_used"
    assert (await ewa.call("GET", "/api/me"))["email_confirmed"] is True

    booking = await ewa.call("POST", "/api/bookings", {"slot_id": slot["id"]}, expect=201)
    confirmation = await mail.wait(EMAIL, 2)
    assert confirmation["Subject"].startswith("Booked: Dermatology")
    (attachment,) = list(confirmation.iter_attachments())
    assert attachment.get_filename() == f"booking-{booking['id']}.ics"
    assert attachment.get_content_type() == "text/calendar"
    (event,) = Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert event["UID"] == f"booking-{booking['id']}@consult"
    # The Message-ID is the notification's id: a retry would carry the same one.
    (row,) = await _notifications(database_url, "booking_confirmed")
    assert confirmation["Message-ID"] == f"<{row.id}@consult.invalid>"
    assert row.status == "sent" and row.body is None  # delivered: the body is dropped


async def test_bad_sign_ups_are_refused_and_change_nothing(api, mail, database_url):
    anonymous = await api()
    users = await count(database_url, t.users)
    cases = [
        ({"password": "too short"}, 400, "weak_password"),
        ({"password": "qwerty123456"}, 400, "common_password"),
        ({"password": "Password1234!"}, 400, "common_password"),
        ({"password": "ewa@example.org"}, 400, "common_password"),
        ({"email": "not an address"}, 400, "invalid_email"),
        ({"name": "   "}, 400, "invalid_payload"),
        ({"accept_terms": False}, 400, "terms_not_accepted"),
        ({"accept_terms": "yes"}, 400, "invalid_payload"),
        ({"role": "doctor"}, 400, "invalid_payload"),
    ]
    for change, status, code in cases:
        payload = {"email": EMAIL, "name": "Ewa", "password": PASSWORD, "accept_terms": True}
        answer = await anonymous.call("POST", "/api/signup", payload | change, expect=status)
        assert answer["error"]["code"] == code, change
    assert await count(database_url, t.users) == users
    assert await count(database_url, t.notifications) == 0


async def test_a_taken_address_is_not_told_apart_but_its_owner_is_told(api, mail, database_url):
    anonymous = await api()
    users = await count(database_url, t.users)
    answer = await sign_up(anonymous, "anna@demo.test", name="Someone Else")
    assert answer == {"status": "check_your_email"}  # the same as for a new address
    message = await mail.wait("anna@demo.test")
    assert message["Subject"] == "You already have an account"
    assert "#token=" not in body(message)
    assert await count(database_url, t.users) == users
    anna = await api("anna@demo.test")  # her password and account unchanged
    assert anna.user["name"] == "Anna Kowalska"


async def test_bad_used_and_expired_confirmation_links(api, mail, clock, database_url):
    anonymous = await api()
    await sign_up(anonymous, EMAIL)
    token = link_token(await mail.wait(EMAIL))
    for bad, code in (("nonsense", "token_invalid"), ("", "invalid_payload")):
        answer = await anonymous.call("POST", "/api/signup/confirm", {"token": bad}, expect=400)
        assert answer["error"]["code"] == code
    clock.advance(timedelta(hours=48, seconds=1).total_seconds())
    late = await anonymous.call("POST", "/api/signup/confirm", {"token": token}, expect=400)
    assert late["error"]["code"] == "token_expired"
    confirmed = t.users.c.email_confirmed_at.is_not(None)
    assert await count(database_url, t.users, t.users.c.email == EMAIL, confirmed) == 0


async def _notifications(database_url: str, kind: str) -> list[sa.Row]:
    return await rows(database_url, t.notifications, t.notifications.c.kind == kind)
