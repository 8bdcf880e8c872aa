"""How a chat message shows the document a patient shared with it.

The chat owns these columns and this shape: documents/ imports the chat (to share into it), so
the chat must not import documents/ back.
"""

from __future__ import annotations

from typing import Any

from consult.schemas import DocumentRefOut
from consult.storage import tables as t

_D = t.documents.c

# The columns the chat's message query joins in to show a shared document (labelled apart from
# the message's own columns).
MESSAGE_DOCUMENT_COLUMNS = (
    _D.filename.label("doc_filename"),
    _D.description.label("doc_description"),
    _D.content_type.label("doc_content_type"),
    _D.size.label("doc_size"),
    _D.deleted_at.label("doc_deleted_at"),
)


def message_document(row: Any) -> DocumentRefOut | None:
    """The shared document of a message row selected with ``MESSAGE_DOCUMENT_COLUMNS``."""
    if row.document_id is None:
        return None
    return document_ref(
        row.document_id,
        row.doc_filename,
        row.doc_description,
        row.doc_content_type,
        row.doc_size,
        row.doc_deleted_at,
    )


def document_ref(
    document_id: int,
    filename: str,
    description: str,
    content_type: str,
    size: int,
    deleted_at: Any,
) -> DocumentRefOut:
    return DocumentRefOut(
        id=document_id,
        filename=filename,
        description=description,
        content_type=content_type,
        size=size,
        deleted=deleted_at is not None,
    )
