"""Socket.IO acks: ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {code, message}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from pydantic import BaseModel

from consult.audit import Audit, audit_id, refusals_watched
from consult.domain import Actor
from consult.errors import ConsultError

log = logging.getLogger(__name__)


async def ack(work: Awaitable[BaseModel | None]) -> dict[str, Any]:
    try:
        result = await work
    except ConsultError as exc:
        return {"ok": False, "error": exc.to_dict()}
    except Exception:
        log.exception("unhandled error in a Socket.IO event")
        return {"ok": False, "error": {"code": "internal", "message": "something went wrong"}}
    return {"ok": True, "data": result.model_dump(mode="json") if result is not None else None}


async def audit_refusals(
    audit: Audit, actor: Actor, event: str, payload: Any, work: Awaitable[Any]
) -> Any:
    """Run one client event: a refusal leaves an audit row (the service's own, or a
    ``refused`` row naming the event and code), as on HTTP (docs/architecture.md, Audit)."""
    with refusals_watched() as noted:
        try:
            return await work
        except ConsultError as exc:
            if exc.status >= 500:  # not a refusal (the database down): nothing to audit
                raise
            cid = payload.get("consultation_id") if isinstance(payload, dict) else None
            await audit.refused_at_edge(
                actor,
                noted,
                f"{exc.code}: {event}",
                consultation_id=audit_id(cid),
                rate_limited=exc.status == 429,
            )
            raise
