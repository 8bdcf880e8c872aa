"""The e-mails' words (English for now), one function per kind. A body may hold a single-use
link or an access code: the outbox drops it once it is sent."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.notify.outbox import Attachment, Mail
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

SIGN_OFF = "\n\n-- \nconsult. You get this e-mail because of your account with us."


async def recipient(uow: UnitOfWork, user_id: int) -> Any:
    """The user's e-mail and name."""
    u = t.users
    return (await uow.conn.execute(sa.select(u.c.email, u.c.name).where(u.c.id == user_id))).one()


def confirm_email(user_id: int, to: str, name: str, link: str) -> Mail:
    body = (
        f"Hello {name},\n\nconfirm your e-mail address for consult by opening this link "
        f"(valid for 48 hours, once):\n\n{link}\n\nIf you did not sign up, ignore this e-mail."
    )
    return Mail("email_confirm", to, "Confirm your e-mail address", body + SIGN_OFF, user_id)


def already_registered(user_id: int, to: str, name: str, link: str) -> Mail:
    body = (
        f"Hello {name},\n\nsomeone (you?) tried to sign up for consult with this address, "
        f"which already has an account. To log in, open {link}; forgot your password? Use "
        '"Forgot password" there.\n\nIf it was not you, ignore this e-mail.'
    )
    return Mail("email_registered", to, "You already have an account", body + SIGN_OFF, user_id)


def password_reset(user_id: int, to: str, name: str, link: str) -> Mail:
    body = (
        f"Hello {name},\n\nto choose a new password open this link (valid for 30 minutes, "
        f"once):\n\n{link}\n\nEvery session of your account ends when you do. If you did not "
        "ask for this, ignore this e-mail: your password stays as it is."
    )
    return Mail("password_reset", to, "Reset your password", body + SIGN_OFF, user_id)


def set_password(user_id: int, to: str, name: str, link: str) -> Mail:
    body = (
        f"Hello {name},\n\nan account has been made for you at consult. Choose your password "
        f"with this link (valid for 72 hours, once):\n\n{link}"
    )
    return Mail("password_set", to, "Your consult account", body + SIGN_OFF, user_id)


def booking_confirmed(
    user_id: int, to: str, name: str, what: str, when: str, ics_text: str, booking_id: int
) -> Mail:
    body = (
        f"Hello {name},\n\nyour visit is booked: {what}, {when}.\n\nThe attached calendar "
        "file adds it to your calendar. Cancel it in consult under My bookings if you cannot "
        "come."
    )
    attachment = Attachment(f"booking-{booking_id}.ics", "text/calendar", ics_text)
    return Mail("booking_confirmed", to, f"Booked: {what}", body + SIGN_OFF, user_id, attachment)


def prescription_issued(
    user_id: int, to: str, name: str, doctor: str, access_code: str, key: str, count: int
) -> Mail:
    body = (
        f"Hello {name},\n\n{doctor} has issued you {count} e-prescription(s).\n\n"
        f"Access code: {access_code}\nPackage key: {key}\n\nGive the pharmacist the access "
        "code and your PESEL. The prescriptions are also in consult under Prescriptions and "
        "documents."
    )
    return Mail("prescription_issued", to, "Your e-prescription", body + SIGN_OFF, user_id)


def follow_up_answered(user_id: int, to: str, name: str, doctor: str) -> Mail:
    body = (
        f"Hello {name},\n\n{doctor} has answered your follow-up question. Read the answer in "
        "consult (My record)."
    )
    return Mail("follow_up_answered", to, "Your question is answered", body + SIGN_OFF, user_id)


def renewal_decided(user_id: int, to: str, name: str, approved: bool) -> Mail:
    # Names no medicine: an e-mail passes through hands the record does not.
    outcome = "approved: a new prescription is issued" if approved else "declined"
    body = (
        f"Hello {name},\n\nyour prescription renewal request is {outcome}. The details are "
        "in consult under Prescriptions and documents."
    )
    subject = "Renewal approved" if approved else "Renewal declined"
    return Mail("renewal_decided", to, subject, body + SIGN_OFF, user_id)
