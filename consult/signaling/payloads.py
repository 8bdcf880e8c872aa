"""Client event payloads: a JSON object, validated against the event's model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from consult.errors import Invalid
from consult.http.routing import validate


def validate_payload(model: type[BaseModel], payload: Any) -> Any:
    # Socket.IO passes whatever the client sent (a list, a string, nothing): refused here with
    # the same code as a bad field.
    if not isinstance(payload, dict):
        raise Invalid("the payload must be a JSON object", code="invalid_payload")
    return validate(model, payload)
