"""A payload against its model, for HTTP bodies and Socket.IO events alike: one error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from consult.errors import Invalid


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise Invalid(
            "the payload is not valid: "
            + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            code="invalid_payload",
            details={"problems": problems},
        ) from exc
