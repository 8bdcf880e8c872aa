"""Payload models: one per route and event, in and out. They validate input at the edges and
describe the API in OpenAPI and docs/protocol.md."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from consult.domain import ConsultationStatus, Form, Identity, PresenceStatus, Role


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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


class LoginOut(Out):
    token: str = Field(description="Bearer token for API and Socket.IO clients.")
    expires_at: datetime
    user: UserOut


class SpecialtyOut(Out):
    code: str
    name: str
    covered: bool | None = Field(
        default=None, description="For patients: whether their plan covers it."
    )


class SpecialtiesOut(Out):
    specialties: list[SpecialtyOut]


# --- consultations ----------------------------------------------------------------------------


class StartConsultationIn(In):
    specialty: str = Field(min_length=1, max_length=40)
    form: Form


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


class ConsultationsOut(Out):
    consultations: list[ConsultationOut]


class PresenceIn(In):
    specialties: list[str] = Field(min_length=1, max_length=20)
    forms: list[Form] = Field(min_length=1, max_length=3)


class PresenceOut(Out):
    status: PresenceStatus
    specialties: list[str]
    forms: list[Form]
    capacity: int


# --- chat -------------------------------------------------------------------------------------


class SendMessageIn(In):
    consultation_id: int
    client_id: str = Field(
        min_length=1, max_length=64, description="The sender's own id; a retry reuses it."
    )
    body: str = Field(min_length=1, max_length=4000)


class MessageOut(Out):
    id: int
    consultation_id: int
    seq: int
    sender_id: int
    sender_role: Role
    client_id: str
    body: str
    created_at: datetime


class MessagesOut(Out):
    messages: list[MessageOut]


# --- records ----------------------------------------------------------------------------------


class RecommendationIn(In):
    text: str = Field(min_length=1, max_length=10000)


class RecommendationOut(Out):
    id: int
    consultation_id: int
    doctor: PersonOut
    text: str
    created_at: datetime


class RecordEntryOut(Out):
    consultation: ConsultationOut
    transcript: list[MessageOut]
    recommendations: list[RecommendationOut]


class RecordOut(Out):
    patient: PersonOut
    entries: list[RecordEntryOut]


class EmptyIn(In):
    pass


class HealthOut(Out):
    status: str
    database: str
    bus: str
