"""The demo's results (consult/demo.py seeds them): a blood count and a lipid panel at two dates
for Anna (the latest leukocytes flagged high by the laboratory, the earlier total cholesterol
over its range), a lipid panel for Piotr, and a chest X-ray report for Anna, all from "Demo
laboratory". Seeded once, with the demo laboratory's credential (revoked at once: its token
was never shown), so a result is never seeded twice."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa

from consult.results import repository as repo
from consult.results.drafts import Coded, ObservationDraft, ReportDraft
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

SENDER: Final = "Demo laboratory"
REPORTS: Final = "urn:consult:demo-laboratory"
LOINC: Final = "http://loinc.org"
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"

# LOINC code, name, unit, low, high
_CBC: Final = (
    ("6690-2", "Leukocytes", "10^9/L", 4.0, 10.0),
    ("718-7", "Hemoglobin", "g/dL", 12.0, 16.0),
    ("777-3", "Platelets", "10^9/L", 150.0, 400.0),
)
_LIPIDS: Final = (
    ("2093-3", "Cholesterol, total", "mg/dL", None, 200.0),
    ("13457-7", "LDL cholesterol", "mg/dL", None, 115.0),
    ("2085-9", "HDL cholesterol", "mg/dL", 45.0, None),
    ("2571-8", "Triglycerides", "mg/dL", None, 150.0),
)
_PANELS: Final = {
    "cbc": ("HM", "Hematology", "58410-2", "Complete blood count", _CBC),
    "lipids": ("CH", "Chemistry", "57698-3", "Lipid panel", _LIPIDS),
}
# email, panel, days ago, values (in the panel's order), laboratory flags by LOINC code
_Seeded = tuple[str, str, int, tuple[float, ...], dict[str, str]]
_RESULTS: Final[tuple[_Seeded, ...]] = (
    ("anna@demo.test", "cbc", 120, (6.1, 13.1, 250.0), {}),
    ("anna@demo.test", "lipids", 120, (212.0, 128.0, 58.0, 140.0), {}),
    ("anna@demo.test", "cbc", 7, (11.4, 13.4, 262.0), {"6690-2": "H"}),
    ("anna@demo.test", "lipids", 7, (188.0, 104.0, 61.0, 120.0), {}),
    ("piotr@demo.test", "lipids", 30, (176.0, 98.0, 52.0, 110.0), {}),
)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}–{high:g}"
    return f"≥ {low:g}" if low is not None else f"≤ {high:g}"


def _panel(
    panel: str, taken: datetime, values: tuple[float, ...], flags: dict[str, str]
) -> ReportDraft:
    category_code, category, code, title, tests = _PANELS[panel]
    return ReportDraft(
        identifier_system=REPORTS,
        identifier_value="",
        status="final",
        code=Coded(LOINC, code, title),
        effective_at=taken,
        category=Coded(V2_0074, category_code, category),
        issued_at=taken + timedelta(hours=4),
        performer=SENDER,
        observations=tuple(
            ObservationDraft(
                code=Coded(LOINC, loinc, name),
                status="final",
                value_kind="quantity",
                value_number=value,
                value_text=f"{value:g}",
                unit=unit,
                low=low,
                high=high,
                range_text=_range(low, high),
                interpretation=flags.get(loinc),
            )
            for (loinc, name, unit, low, high), value in zip(tests, values, strict=True)
        ),
    )


def _x_ray(taken: datetime) -> ReportDraft:
    return ReportDraft(
        identifier_system=REPORTS,
        identifier_value="",
        status="final",
        code=Coded(LOINC, "36643-5", "Chest X-ray, 2 views"),
        effective_at=taken,
        category=Coded(V2_0074, "RAD", "Radiology"),
        issued_at=taken + timedelta(days=1),
        performer=SENDER,
        conclusion="No focal lesions in the lungs. Heart not enlarged. Costophrenic angles free.",
    )


async def seed_demo_results(uow: UnitOfWork, now: datetime) -> int:
    """The demo results, once: nothing when the demo laboratory exists already (or when its
    patients do not). Returns how many results were stored."""
    have = await uow.conn.execute(
        sa.select(t.integrations.c.id).where(t.integrations.c.name == SENDER)
    )
    if have.first() is not None:
        return 0
    users = await uow.conn.execute(sa.select(t.users.c.email, t.users.c.id))
    ids = {r.email: r.id for r in users}
    unusable = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    sender_id = (
        await uow.conn.execute(
            t.integrations.insert()
            .values(name=SENDER, token_hash=unusable, created_at=now, revoked_at=now)
            .returning(t.integrations.c.id)
        )
    ).scalar_one()
    drafts = [
        (email, _panel(panel, now - timedelta(days=days), values, flags))
        for email, panel, days, values, flags in _RESULTS
    ]
    drafts.append(("anna@demo.test", _x_ray(now - timedelta(days=40))))
    stored = 0
    for number, (email, draft) in enumerate(drafts, start=1):
        if email not in ids:
            continue
        draft = replace(draft, identifier_value=f"DEMO-{number}")
        result_id = await repo.insert_new(
            uow,
            **repo.report_values(draft, draft.fingerprint()),
            patient_id=ids[email],
            integration_id=sender_id,
            sender=SENDER,
            received_at=draft.issued_at,
        )
        assert result_id is not None
        await repo.add_observations(
            uow, result_id, ids[email], draft.effective_at, draft.observations
        )
        stored += 1
    return stored
