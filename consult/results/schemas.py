"""Payload models of results: what the patient and their doctors read (a page of results, a
value's history), and the shapes of the integration route's FHIR body and answers, for the
OpenAPI document (the route reads and writes FHIR JSON itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import ConfigDict, Field

from consult.results.flags import ValueFlag, ValueFlagSource
from consult.schemas import Id, In, Out, PersonOut

RESULTS_PAGE: Final = 20
RESULTS_MAX_PAGE: Final = 50
HISTORY_POINTS: Final = 200


class ResultCodeOut(Out):
    system: str | None = Field(description="The code system (LOINC: http://loinc.org).")
    code: str | None
    display: str = Field(description="What to call it: the laboratory's text or display.")


class ResultIdentifierOut(Out):
    system: str
    value: str


class ResultObservationOut(Out):
    id: int
    code: ResultCodeOut
    status: str = Field(description="FHIR's Observation.status (final, corrected, ...).")
    value_kind: Literal["quantity", "integer", "string", "concept", "absent"]
    value: str | None = Field(
        description="The value as the laboratory gave it ('11.2', '<0.1', 'positive'); for an "
        "absent value, the reason."
    )
    value_number: float | None = Field(description="The value as a number, when it is one.")
    comparator: str | None = Field(
        description="A value given as a bound: <, <=, >= or > (value_number is the bound)."
    )
    unit: str | None
    low: float | None = Field(description="The reference range's lower bound.")
    high: float | None = Field(description="The reference range's upper bound.")
    range: str | None = Field(description="The reference range as text ('4.0–10.0').")
    interpretation: str | None = Field(
        description="The laboratory's flag: an HL7 v3 ObservationInterpretation code (H, L, "
        "HH, LL, A, AA, N, ...)."
    )
    flag: ValueFlag | None = Field(
        description="high, low, abnormal or normal: the laboratory's flag, else the value "
        "against the range; null when neither says."
    )
    flag_source: ValueFlagSource | None = Field(
        description="laboratory (its interpretation) or range (computed from the range)."
    )
    critical: bool = Field(description="The laboratory flagged it critical (HH, LL, AA).")
    effective_at: datetime


class ResultPdfOut(Out):
    url: str = Field(description="GET it with the same session: the report as a PDF.")
    size: int


class ResultOut(Out):
    id: int
    patient_id: int
    sender: str = Field(description="The sending system (its integration's name).")
    identifier: ResultIdentifierOut = Field(description="The report's id in the sender.")
    status: str = Field(description="FHIR's DiagnosticReport.status (final, amended, ...).")
    category: ResultCodeOut | None
    code: ResultCodeOut = Field(description="What the report is: its display is the title.")
    effective_at: datetime = Field(description="When the sample was taken or the study made.")
    issued_at: datetime | None
    received_at: datetime
    changed_at: datetime | None = Field(description="When a correction replaced it.")
    performer: str | None
    conclusion: str | None
    pdf: ResultPdfOut | None
    observations: list[ResultObservationOut]
    out_of_range: int = Field(
        description="How many of its values are flagged high, low or abnormal."
    )


class ResultsOut(Out):
    patient: PersonOut
    results: list[ResultOut] = Field(description="Newest first (by effective_at).")
    next: int | None = Field(description="The `before` of the next page; null on the last.")


class ResultsQuery(In):
    before: Id | None = Field(
        default=None, description="Only results older than this result (the answer's next)."
    )
    limit: int = Field(
        default=RESULTS_PAGE,
        ge=1,
        le=RESULTS_MAX_PAGE,
        description="At most this many results.",
    )


class ResultHistoryQuery(In):
    system: str = Field(min_length=1, max_length=200, description="The code's system.")
    code: str = Field(min_length=1, max_length=64)


class ResultHistoryPointOut(Out):
    result_id: int
    observation_id: int
    effective_at: datetime
    value: str | None
    value_number: float | None
    unit: str | None
    low: float | None
    high: float | None
    flag: ValueFlag | None
    flag_source: ValueFlagSource | None


class ResultHistoryOut(Out):
    patient: PersonOut
    code: ResultCodeOut = Field(description="The code asked for, named as in its last value.")
    points: list[ResultHistoryPointOut] = Field(
        description=f"Oldest first: the last {HISTORY_POINTS} values at most."
    )
    has_more: bool = Field(description="Older values were left out.")


# --- the integration route's FHIR (OpenAPI only) -------------------------------------------


class _Fhir(Out):
    model_config = ConfigDict(extra="allow")


class IntakeBundleIn(_Fhir):
    """A FHIR R4 Bundle (transaction or collection) with one DiagnosticReport, the
    Observations its result lists and, optionally, its Patient (by PESEL)."""

    resourceType: Literal["Bundle"]
    type: str = Field(description="transaction or collection")
    entry: list[dict[str, Any]] = Field(description="{fullUrl, resource, request}")


class IntakeResponseOut(_Fhir):
    """A FHIR Bundle of type transaction-response: an entry per entry sent, in order, each with
    its response.status (and the location of what was stored)."""

    resourceType: Literal["Bundle"]
    type: Literal["transaction-response"]
    entry: list[dict[str, Any]]


class OperationOutcomeOut(_Fhir):
    """A FHIR OperationOutcome: each issue's severity, code (FHIR's issue type), details
    (consult's error code in coding, system urn:consult:error-code), diagnostics and
    expression (the element concerned)."""

    resourceType: Literal["OperationOutcome"]
    issue: list[dict[str, Any]]
