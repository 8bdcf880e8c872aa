"""The FHIR routes' query and the shape of their answers, for the OpenAPI document (the
answers themselves are FHIR JSON built by bundles.py, served as application/fhir+json)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field, WithJsonSchema

from consult.fhir.bundles import MEDICATION_REQUEST_STATUSES, STATUS_PATTERN
from consult.schemas import In, Out

FHIR_JSON: Final = "application/fhir+json"


# Described, not enforced by the model: bundles.parse_statuses refuses an unknown code with a
# message naming the codes it takes.
StatusCodes = Annotated[
    str, WithJsonSchema({"type": "string", "maxLength": 200, "pattern": STATUS_PATTERN})
]


class MedicationRequestQuery(In):
    status: StatusCodes | None = Field(
        default=None,
        max_length=200,
        description="MedicationRequest statuses separated by commas, any of which matches ("
        + ", ".join(MEDICATION_REQUEST_STATUSES)
        + "); every MedicationRequest when left out.",
    )


class BundleEntryOut(Out):
    fullUrl: str = Field(description="urn:uuid:<the resource's id>")
    resource: dict[str, Any] = Field(description="A FHIR R4 resource (resourceType, id, ...).")
    search: dict[str, str] | None = Field(
        default=None, description='searchset only: {"mode": "match"} or {"mode": "include"}'
    )


class BundleOut(Out):
    """A FHIR R4 Bundle, as the FHIR routes answer it."""

    resourceType: Literal["Bundle"]
    type: Literal["collection", "searchset"]
    timestamp: datetime
    total: int | None = Field(default=None, description="searchset only: the matches.")
    link: list[dict[str, str]] | None = Field(
        default=None, description='searchset only: [{"relation": "self", "url": ...}]'
    )
    entry: list[BundleEntryOut] | None = Field(
        default=None, description="Left out when empty (a search without a match)."
    )
