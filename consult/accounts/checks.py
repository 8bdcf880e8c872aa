"""Who may use the features that need a confirmed identity (online consultations, documents,
follow-up questions)."""

from __future__ import annotations

from consult.domain import Actor, Identity
from consult.errors import NotAllowed


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
