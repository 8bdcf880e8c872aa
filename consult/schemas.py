"""Payload models: one per route and event, in and out. They validate input at the edges and
describe the API in OpenAPI and docs/protocol.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator

from consult.domain import ConsultationStatus, Form, Identity, PresenceStatus, Role

MAX_ID: Final = 2**31 - 1
"""The largest id: every id a client names is 1 … MAX_ID. The id columns are INTEGER, 32 bits
on PostgreSQL (an id past it failed there with a 500, as one past 2^63 did on SQLite)."""


def _integral(value: Any) -> Any:
    # JSON (and JSON Schema's "integer") has one kind of number: 7.0 is 7. True is not.
    return int(value) if type(value) is float and value.is_integer() else value


# Ids are JSON integers: `true` (read as 1 before), "1" and 7.5 are refused, and so is anything
# the id columns cannot hold (a 500 at the database before).
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID), BeforeValidator(_integral)]
# Sequence numbers within a consultation's chat: 0 … MAX_ID, integers like ids.
Seq = Annotated[int, Strict(), Field(ge=0, le=MAX_ID), BeforeValidator(_integral)]


# Python's whitespace (str.isspace), which str_strip_whitespace strips: spelled out for the
# OpenAPI document, whose regular expressions are ECMAScript's.
_SPACE = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
SPECIALTY_MARK: Final = "x-specialty-code"
# A specialty's code: the served OpenAPI document lists the clinic's codes (an enum).
SpecialtyCode = Annotated[
    str, Field(min_length=1, max_length=40, json_schema_extra={SPECIALTY_MARK: True})
]


def _text_pattern(shortest: int, longest: int | None) -> str:
    """The strings an ``In`` field accepts, as one pattern: no NUL anywhere, and between
    ``shortest`` and ``longest`` characters once leading and trailing whitespace is stripped."""
    edge = f"[^{_SPACE}\\x00]"  # the first and last kept character
    if longest is not None and longest < 2:
        core = f"{edge}?" if shortest == 0 else edge
    else:
        inner = f"[^\\x00]{{{max(shortest - 2, 0)},{'' if longest is None else longest - 2}}}"
        core = f"{edge}(?:{inner}{edge})?" if shortest <= 1 else f"{edge}{inner}{edge}"
        core = f"(?:{core})?" if shortest == 0 else core
    return f"^[{_SPACE}]*{core}[{_SPACE}]*$"


def _document_texts(schema: dict[str, Any]) -> None:
    """State the NUL rule and the stripping in the OpenAPI document (schemathesis found the
    server refusing strings the document allowed): the lengths move into the pattern."""
    for prop in schema.get("properties", {}).values():
        for member in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
            if member.get("type") == "string" and not {"pattern", "format", "enum"} & set(member):
                shortest = member.pop("minLength", 0)
                member["pattern"] = _text_pattern(shortest, member.pop("maxLength", None))


class In(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_document_texts
    )

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL's text cannot hold U+0000: a chat message or a question carrying one
        # failed there at the insert (a 500), while SQLite stored it. Refused on both alike.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in texts):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- accounts ---------------------------------------------------------------------------------


class LoginIn(In):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    identity: Identity
    plan: str | None = None
    specialties: list[str] = Field(
        default_factory=list, description="For doctors: the specialties they practise."
    )
    email_confirmed: bool = Field(
        default=True, description="False until a new account opens its confirmation link."
    )
    totp: bool = Field(default=False, description="Whether logging in asks for a TOTP code.")


class SessionOut(Out):
    """The session probe: who is logged in, or nobody (never a 401)."""

    user: UserOut | None = Field(description="null when there is no valid session")


class SpecialtyOut(Out):
    code: str
    name: str
    covered: bool | None = Field(
        default=None, description="For patients: whether their plan covers it."
    )


class CatalogueSpecialtyOut(SpecialtyOut):
    """A specialty as ``GET /api/specialties`` lists it."""

    referral_required: bool = Field(
        description="Its visits are booked only with the patient's referral to it."
    )


class SpecialtiesOut(Out):
    specialties: list[CatalogueSpecialtyOut]


# --- consultations ----------------------------------------------------------------------------


class StartConsultationIn(In):
    specialty: SpecialtyCode
    form: Form
    preferred_doctor_id: Id | None = Field(
        default=None, description="Wait for this doctor only (they must practise the specialty)."
    )
    language: str | None = Field(
        default=None, min_length=2, max_length=8, description="e.g. pl, en; doctors may filter."
    )


class PersonOut(Out):
    id: int
    name: str


class ConsultationOut(Out):
    id: int
    status: ConsultationStatus
    specialty: SpecialtyOut
    form: Form
    patient: PersonOut
    doctor: PersonOut | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    language: str | None = None
    offer_expires_at: datetime | None = None


class EtaOut(Out):
    low_minutes: int | None = Field(description="null when nobody can serve the ticket now")
    high_minutes: int | None
    basis: str


class DoctorsStateOut(Out):
    online: int = Field(description="online for this specialty and form")
    busy: int
    away: int


class TicketUpdateOut(Out):
    """Pushed to each waiting patient as ``queue:ticket`` whenever their queue moves."""

    consultation_id: int
    status: ConsultationStatus
    place: int = Field(description="1 = next in line; 0 = being connected to a doctor now")
    waiting: int = Field(description="tickets in this specialty and form queue")
    eta: EtaOut
    doctors: DoctorsStateOut
    long_wait: bool = Field(
        description="no doctor can serve the ticket now or the upper estimate passes "
        "CONSULT_ALTERNATIVES_THRESHOLD: the full ticket (GET /api/queue/ticket) offers slots"
    )


class ConsultationsOut(Out):
    consultations: list[ConsultationOut]


class PresenceIn(In):
    specialties: list[str] = Field(min_length=1, max_length=20)
    forms: list[Form] = Field(min_length=1, max_length=3)
    capacity: int | None = Field(
        default=None, ge=1, le=10, description="parallel chats wanted (capped by the server)"
    )
    languages: list[str] = Field(default_factory=list, max_length=10)


class PresenceOut(Out):
    status: PresenceStatus
    specialties: list[str]
    forms: list[Form]
    capacity: int
    languages: list[str] = Field(default_factory=list)


class OfferAnswerIn(In):
    consultation_id: Id


# --- chat -------------------------------------------------------------------------------------


class SendMessageIn(In):
    consultation_id: Id
    client_id: str = Field(
        min_length=1, max_length=64, description="The sender's own id; a retry reuses it."
    )
    # The length limit (CONSULT_CHAT_MAX_LENGTH, 4,000 characters) is checked by the chat
    # service, so that a long message gets its own error code (message_too_long).
    body: str = Field(min_length=1, description="At most 4,000 characters (message_too_long).")


class DocumentRefOut(Out):
    """A document as the chat shows it (shared into the consultation by the patient)."""

    id: int
    filename: str
    description: str
    content_type: str
    size: int = Field(description="bytes")
    deleted: bool = Field(default=False, description="the patient has deleted it since")


class MessageOut(Out):
    id: int
    consultation_id: int
    seq: int
    sender_id: int
    sender_role: Role
    client_id: str
    body: str
    created_at: datetime
    document: DocumentRefOut | None = Field(
        default=None, description="a document the patient shared with this message"
    )


# A transcript is read in pages (a long one read at once held up every other request while
# SQLite, on the event loop's thread, read it): at most MESSAGES_MAX_PAGE messages an answer.
MESSAGES_PAGE: Final = 200
MESSAGES_MAX_PAGE: Final = 500
MessagesLimit = Annotated[
    int, Strict(), Field(ge=1, le=MESSAGES_MAX_PAGE), BeforeValidator(_integral)
]
_HAS_MORE = "More messages follow the last one given: ask again with after = its seq."


class MessagesOut(Out):
    messages: list[MessageOut]
    has_more: bool = Field(default=False, description=_HAS_MORE)


class ResumeIn(In):
    consultation_id: Id
    after_seq: Seq = Field(default=0, description="The last seq the client holds.")
    limit: MessagesLimit = Field(
        default=MESSAGES_PAGE, description="At most this many messages in the answer."
    )


class MessagesQuery(In):
    """The query of ``GET /api/consultations/{id}/messages`` (for the OpenAPI document)."""

    after: Seq = Field(default=0, description="Only messages after this seq.")
    limit: MessagesLimit = Field(default=MESSAGES_PAGE, description="At most this many messages.")


class ReadStateOut(Out):
    patient_read_seq: int = Field(description="The patient has read every message up to this seq.")
    doctor_read_seq: int = Field(description="The doctor has read every message up to this seq.")


class ResumeOut(Out):
    consultation_id: int
    status: ConsultationStatus
    messages: list[MessageOut] = Field(
        description="The messages after after_seq, in order, at most limit of them."
    )
    has_more: bool = Field(default=False, description=_HAS_MORE)
    last_seq: int = Field(description="The consultation's last seq when this was read.")
    read: ReadStateOut


class ReadIn(In):
    consultation_id: Id
    seq: Seq = Field(description="The highest seq the reader has seen.")


class ReceiptOut(Out):
    consultation_id: int
    reader_id: int
    reader_role: Role
    read_seq: int
    read: ReadStateOut


class TypingIn(In):
    consultation_id: Id
    typing: bool


class TypingOut(Out):
    consultation_id: int
    user_id: int
    role: Role
    typing: bool


# --- record parts kept by other features (the record itself: records/schemas.py) ----------


class FollowUpOut(Out):
    """An "Ask the doctor" question after a finished consultation, and its answer."""

    id: int
    consultation_id: int
    patient: PersonOut
    doctor: PersonOut
    question: str
    asked_at: datetime
    answer: str | None
    answered_at: datetime | None


class FormStretchOut(Out):
    """One stretch of a consultation in one form (calls: chat -> voice -> video and back)."""

    form: Form
    started_at: datetime | None
    ended_at: datetime | None
    requested_by: int | None = None


class RecordingOut(Out):
    """A call recording (both sides consented); downloaded from its ``url``."""

    id: int
    consultation_id: int
    status: str = Field(
        description="recording, composing (the call is over; its file is being prepared for "
        "playback), ready or failed"
    )
    started_at: datetime
    ended_at: datetime | None
    size: int | None
    sha256: str | None
    url: str


class EmptyIn(In):
    pass


class HealthOut(Out):
    status: str
    database: str
    bus: str
