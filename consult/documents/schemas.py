"""Document payload models (the chat's view of a document is consult/schemas.DocumentRefOut)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from consult.documents.rules import MAX_DESCRIPTION, MAX_FILES, MAX_SIZE
from consult.schemas import DocumentRefOut, Id, In, Out


class DocumentOut(Out):
    id: int
    patient_id: int
    filename: str = Field(description="the name it downloads under (only metadata)")
    description: str
    content_type: str = Field(
        description="judged from the content: image/jpeg, image/png, application/pdf"
    )
    size: int = Field(description="bytes")
    sha256: str = Field(description="hex SHA-256 of the stored file")
    created_at: datetime
    url: str = Field(description="where the file is downloaded (as an attachment)")


class DocumentsOut(Out):
    documents: list[DocumentOut]
    max_files: int = MAX_FILES
    max_size: int = Field(default=MAX_SIZE, description="bytes per file")


class UploadForm(In):
    """The multipart/form-data fields of an upload, for the OpenAPI document (the route reads
    the parts itself, streaming the file)."""

    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    file: bytes = Field(
        description=f"JPEG, PNG or PDF, judged by its content; at most {MAX_SIZE} bytes."
    )


class ShareDocumentIn(In):
    document_id: Id
    client_id: str = Field(
        min_length=1, max_length=64, description="The sender's own id; a retry reuses it."
    )


class DocumentUploadedOut(Out):
    """The ``document:uploaded`` event: the patient has a new document."""

    patient_id: int
    document: DocumentOut


class DocumentDeletedOut(Out):
    """The ``document:deleted`` event: the patient deleted a document. ``document`` is what a
    chat message that shared it carries from now on (``deleted`` true)."""

    patient_id: int
    document: DocumentRefOut
