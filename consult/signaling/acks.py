"""Socket.IO acks: ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {code, message}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from pydantic import BaseModel

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
