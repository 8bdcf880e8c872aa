"""Storage folders stay out of the web root; downloads go out as attachments, never inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from consult.attachments import StorageDirError, attachment_headers
from consult.calls.recordings import RecordingStore


def test_recordings_may_not_be_kept_inside_the_web_root(tmp_path: Path) -> None:
    with pytest.raises(StorageDirError, match="CONSULT_RECORDINGS_DIR"):
        RecordingStore(tmp_path / "web" / "recordings", web_root=tmp_path / "web")
    assert (
        RecordingStore(tmp_path / "recordings", web_root=tmp_path / "web").root
        == (tmp_path / "recordings").resolve()
    )


def test_an_attachment_has_a_plain_fallback_name_and_the_exact_one() -> None:
    headers = attachment_headers('Wynik "krwi"; łódź.pdf', "application/pdf")
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == (
        'attachment; filename="Wynik _krwi__ __d_.pdf"; '
        "filename*=UTF-8''Wynik%20%22krwi%22%3B%20%C5%82%C3%B3d%C5%BA.pdf"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
