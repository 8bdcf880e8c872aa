"""Who may use the features that need a confirmed identity (online consultations, documents,
follow-up questions)."""

from __future__ import annotations

from consult.accounts.repository import email_confirmed
from consult.domain import Actor, Identity
from consult.errors import NotAllowed
from consult.storage.uow import UnitOfWork


def check_verified_patient(actor: Actor, *, only_patients: str, feature: str) -> None:
    """Refuse anyone but a verified patient. ``only_patients`` completes "only patients ...",
    ``feature`` names what needs the verified account: the pages show these messages."""
    if not actor.is_patient:
        raise NotAllowed(f"only patients {only_patients}", code="not_a_patient")
    if actor.identity is not Identity.VERIFIED:
        raise NotAllowed(
            f"{feature} need a verified account; confirm your identity first",
            code="identity_not_verified",
        )


async def check_email_confirmed(uow: UnitOfWork, actor: Actor, feature: str) -> None:
    """Refuse an account whose e-mail is not confirmed yet (a new sign-up)."""
    if not await email_confirmed(uow, actor.user_id):
        raise NotAllowed(
            f"{feature}: confirm your e-mail address first (the link we sent you)",
            code="email_not_confirmed",
        )
