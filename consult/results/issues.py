"""Why a bundle is refused, as FHIR answers it: an OperationOutcome whose issues each give
FHIR's issue type (``code``), the element concerned as a FHIRPath expression
(``Bundle.entry[2].resource.valueQuantity.value``), a sentence (``diagnostics``) and consult's
own error code (``details.coding``, system ``urn:consult:error-code``). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from consult.errors import ConsultError

ERROR_CODE_SYSTEM: Final = "urn:consult:error-code"
# At most this many issues in one answer: a bundle wrong everywhere is not listed whole.
MAX_ISSUES: Final = 50


@dataclass(frozen=True)
class Issue:
    code: str  # consult's error code (docs/protocol.md, "Error code index")
    kind: str  # FHIR's IssueType: structure, required, value, not-found, conflict, ...
    message: str
    expression: str | None = None


class BundleRefused(ConsultError):
    """A bundle (or its delivery) refused: nothing is stored. ``status`` is the HTTP status;
    ``code`` the first issue's."""

    def __init__(self, status: int, issues: Sequence[Issue]) -> None:
        assert issues, "a refusal says why"
        super().__init__(issues[0].message, code=issues[0].code)
        self.status = status
        self.issues = tuple(issues[:MAX_ISSUES])


def refused(
    status: int, kind: str, message: str, at: str | None = None, *, code: str
) -> BundleRefused:
    return BundleRefused(status, [Issue(code, kind, message, at)])


class Issues:
    """The problems found in a bundle, gathered so that one answer names them all."""

    def __init__(self, status: int, *, code: str) -> None:
        self.status = status
        self.code = code
        self.found: list[Issue] = []

    def add(self, kind: str, message: str, at: str | None) -> None:
        self.found.append(Issue(self.code, kind, message, at))

    def check(self) -> None:
        """Refuse the bundle if anything was found so far."""
        if self.found:
            raise BundleRefused(self.status, self.found)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [_issue(i) for i in issues],
    }


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {
        "severity": "error",
        "code": issue.kind,
        "details": {
            "coding": [{"system": ERROR_CODE_SYSTEM, "code": issue.code}],
            "text": issue.message,
        },
        "diagnostics": issue.message,
    }
    if issue.expression:
        out["expression"] = [issue.expression]
    return out


def expression(location: Iterable[int | str], root: str = "Bundle") -> str:
    """A pydantic error's location as a FHIRPath expression: ``('entry', 2, 'resource',
    'status')`` is ``Bundle.entry[2].resource.status``."""
    path = root
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def outcome_of(error: ConsultError) -> tuple[int, list[Issue]]:
    """Any refusal as an OperationOutcome's issues: a bundle's own, or another error (an
    unknown credential, a body too large) as one issue of the type its status says."""
    if isinstance(error, BundleRefused):
        return error.status, list(error.issues)
    kind = dict(_KINDS).get(error.status, "processing")
    return error.status, [Issue(error.code, kind, error.message)]


# HTTP status -> FHIR IssueType, for refusals that are not a bundle's own (pairs, not a dict:
# tests/unit/test_docs_match_server.py reads a dict from statuses as consult's error codes).
_KINDS: Final = (
    (400, "invalid"),
    (401, "login"),
    (403, "forbidden"),
    (408, "timeout"),
    (409, "conflict"),
    (413, "too-costly"),
    (415, "not-supported"),
    (429, "throttled"),
    (503, "transient"),  # the database unavailable for a moment: send the bundle again
)
