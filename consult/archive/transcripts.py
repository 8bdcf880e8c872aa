"""The chat transcripts in the archive: one JSON file per consultation, the messages as the
record's transcript route gives them (``GET /api/patients/{id}/record/{cid}/messages``, every
page), read a page at a time while the file is sent, so a long transcript is never held whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from pydantic_core import to_json

from consult.chat import repository as chat_repo
from consult.storage.uow import Database

PAGE: Final = 500  # messages read at a time


async def transcript(db: Database, consultation_id: int) -> AsyncIterator[bytes]:
    """``{"consultation_id": …, "messages": [...]}``, a page of messages per chunk. Each page
    from a snapshot of its own: the messages of an ended consultation no longer change."""
    yield b'{\n  "consultation_id": %d,\n  "messages": [' % consultation_id
    after, separator = 0, b"\n    "
    while True:
        async with db.reader() as uow:
            messages, more = await chat_repo.messages_after(uow, consultation_id, after, PAGE)
        if messages:
            yield separator + b",\n    ".join(to_json(m) for m in messages)
            separator, after = b",\n    ", messages[-1].seq
        if not more:
            break
    yield b"\n  ]\n}\n"
