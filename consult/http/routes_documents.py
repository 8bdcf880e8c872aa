"""Medical documents over HTTP: multipart upload (streamed, never buffered whole), list, download
as an attachment, delete, and share into the running consultation's chat."""

from __future__ import annotations

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from consult.attachments import attachment_headers
from consult.documents.rules import MAX_DESCRIPTION
from consult.documents.schemas import DocumentOut, DocumentsOut, ShareDocumentIn, UploadForm
from consult.domain import Actor
from consult.errors import Invalid
from consult.http.routing import SERVICES, Api, int_param
from consult.schemas import MessageOut

api = Api()

_UPLOAD_ERRORS = (
    "not_authenticated",
    "not_a_patient",
    "identity_not_verified",
    "multipart_required",
    "malformed_multipart",
    "unexpected_field",
    "file_required",
    "one_file_per_upload",
    "invalid_filename",
    "description_required",
    "description_too_long",
    "file_too_large",
    "unsupported_file_type",
    "image_too_large",
    "unreadable_document",
    "document_active_content",
    "too_many_documents",
)
# A description of MAX_DESCRIPTION characters in UTF-8, with room for multi-byte characters.
_DESCRIPTION_BYTES = MAX_DESCRIPTION * 4 + 64


@api.route(
    "POST",
    "/api/documents",
    summary="Upload a medical document (verified patients). A multipart/form-data body with the "
    "fields `description` (required, up to 500 characters, shown to the doctor) and `file` "
    "(JPEG, PNG or PDF, judged by content; at most 8 MB, refused with 413 as soon as it passes "
    "that). The file is then parsed whole: an image of more than 50,000,000 pixels, an image or "
    "PDF that does not parse, and a PDF with JavaScript, launch actions or embedded files are "
    "refused. At most 5 documents per patient at a time. A refused upload leaves nothing behind.",
    response=DocumentOut,
    status=201,
    tag="documents",
    errors=_UPLOAD_ERRORS,
    upload=UploadForm,
)
async def upload(request: web.Request, actor: Actor) -> DocumentOut:
    documents = request.app[SERVICES].documents
    if request.content_type != "multipart/form-data":
        raise Invalid(
            "send the document as multipart/form-data (fields description and file)",
            code="multipart_required",
        )
    pending = await documents.begin_upload(actor)
    try:
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise Invalid(
                        "nested multipart bodies are not accepted", code="malformed_multipart"
                    )
                if part.name == "file":
                    await documents.receive_file(pending, part.filename, part.read_chunk)
                elif part.name == "description":
                    pending.description = await _text_field(part, _DESCRIPTION_BYTES)
                else:
                    raise Invalid(
                        f"unexpected field {part.name!r}: send description and file",
                        code="unexpected_field",
                    )
        except (ValueError, AssertionError, HttpProcessingError) as exc:
            # aiohttp's multipart reader refuses a body that does not follow the format, or a
            # part header it would not accept on a request either (a NUL byte in a file name).
            raise Invalid(
                "the multipart body is malformed (a part's headers or boundaries)",
                code="malformed_multipart",
            ) from exc
        return await documents.finish_upload(actor, pending)
    finally:
        await documents.abandon(pending)


async def _text_field(part: BodyPartReader, limit: int) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(4096):
        data += chunk
        if len(data) > limit:
            raise Invalid(
                f"the description may be at most {MAX_DESCRIPTION} characters",
                code="description_too_long",
            )
    try:
        return bytes(data).decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError) as exc:
        raise Invalid("the description is not valid UTF-8 text", code="invalid_payload") from exc


@api.route(
    "GET",
    "/api/documents",
    summary="The patient's own documents (not deleted), oldest first, with the limits.",
    response=DocumentsOut,
    tag="documents",
    errors=("not_authenticated", "not_a_patient", "identity_not_verified"),
)
async def my_documents(request: web.Request, actor: Actor) -> DocumentsOut:
    return DocumentsOut(documents=await request.app[SERVICES].documents.mine(actor))


@api.route(
    "GET",
    "/api/patients/{patient_id}/documents",
    summary="A patient's documents, for the doctor consulting them now (an active consultation).",
    response=DocumentsOut,
    tag="documents",
    errors=("not_authenticated", "invalid_id", "patient_not_found"),
)
async def patient_documents(request: web.Request, actor: Actor) -> DocumentsOut:
    pid = int_param(request, "patient_id")
    return DocumentsOut(documents=await request.app[SERVICES].documents.of_patient(actor, pid))


@api.route(
    "GET",
    "/api/documents/{document_id}/content",
    summary="The document's file, as an attachment with its content type and nosniff: for its "
    "patient, the doctor consulting them now, or a doctor it was shared with in a consultation.",
    tag="documents",
    errors=(
        "not_authenticated",
        "invalid_id",
        "document_not_found",
        "not_your_document",
        "document_deleted",
        "document_file_missing",
    ),
)
async def content(request: web.Request, actor: Actor) -> web.StreamResponse:
    did = int_param(request, "document_id")
    found = await request.app[SERVICES].documents.download(actor, did)
    document = found.document
    return web.FileResponse(
        found.path, headers=attachment_headers(document.filename, document.content_type)
    )


@api.route(
    "DELETE",
    "/api/documents/{document_id}",
    summary="The patient deletes one of their documents: the file is removed; a chat message "
    "that shared it then shows it as deleted.",
    tag="documents",
    status=204,
    errors=(
        "not_authenticated",
        "invalid_id",
        "not_a_patient",
        "document_not_found",
        "not_your_document",
    ),
)
async def delete(request: web.Request, actor: Actor) -> None:
    did = int_param(request, "document_id")
    await request.app[SERVICES].documents.delete(actor, did)


@api.route(
    "POST",
    "/api/consultations/{consultation_id}/documents",
    summary="The patient shares one of their documents into their active consultation: it "
    "appears in the chat (a message with a `document`) for the doctor.",
    body=ShareDocumentIn,
    response=MessageOut,
    status=201,
    tag="documents",
    errors=(
        "not_authenticated",
        "invalid_id",
        "invalid_payload",
        "not_a_patient",
        "document_not_found",
        "not_your_document",
        "consultation_not_found",
        "not_participant",
        "consultation_not_active",
    ),
)
async def share(request: web.Request, actor: Actor, body: ShareDocumentIn) -> MessageOut:
    cid = int_param(request, "consultation_id")
    return await request.app[SERVICES].documents.share(actor, cid, body.document_id, body.client_id)
