"""Client event payloads: a JSON object, validated against the event's model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from consult.edges.validation import validate
from consult.errors import Invalid
from consult.json_limits import MAX_DEPTH, MAX_INT_DIGITS, REFUSED


def refuse_unparsed(payload: Any) -> None:
    """Every event, whether it reads its payload or not, refuses one the parser refused."""
    if payload is REFUSED:
        raise Invalid(
            f"the payload is not accepted JSON (at most {MAX_DEPTH} levels deep, "
            f"numbers of at most {MAX_INT_DIGITS} digits)",
            code="malformed_json",
        )


def validate_payload(model: type[BaseModel], payload: Any) -> Any:
    # Socket.IO passes whatever the client sent (a list, a string, nothing): refused here with
    # the same code as a bad field.
    if not isinstance(payload, dict):
        raise Invalid("the payload must be a JSON object", code="invalid_payload")
    return validate(model, payload)
