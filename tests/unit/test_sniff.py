"""The content check: only whole JPEG, PNG and PDF files pass, whatever their name says."""

from __future__ import annotations

import pytest

from consult.documents.rules import safe_filename
from consult.documents.sniff import JPEG, PDF, PNG, display_name, sniff, sniff_bytes
from consult.errors import Invalid
from tests.support import png

JPEG_FILE = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 64
    + b"\xff\xd9"
)
PDF_FILE = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def test_whole_files_of_the_three_kinds_pass() -> None:
    assert sniff_bytes(JPEG_FILE) == JPEG
    assert sniff_bytes(png()) == PNG
    assert sniff_bytes(PDF_FILE) == PDF
    # Trailing padding after the end marker is common and harmless.
    assert sniff_bytes(JPEG_FILE + b"\x00\x00\r\n") == JPEG
    assert sniff_bytes(b"%PDF-2.0\n" + b"x" * 5000 + b"\n%%EOF\r\n") == PDF


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, id="windows-executable"),
        pytest.param(b"\x7fELF\x02\x01\x01" + b"\x00" * 200, id="elf-executable"),
        pytest.param(b"<!doctype html><html><script>alert(1)</script></html>", id="html"),
        pytest.param(
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
            b"</script></svg>",
            id="svg",
        ),
        pytest.param(PDF_FILE[: len(PDF_FILE) // 2], id="truncated-pdf"),
        pytest.param(png()[:-12], id="png-without-iend"),
        pytest.param(JPEG_FILE[:-2], id="jpeg-without-eoi"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + b"IEND\xaeB`\x82", id="png-no-ihdr"),
        pytest.param(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", id="gif"),
        pytest.param(b"hello %PDF-1.4\n%%EOF", id="pdf-header-not-at-start"),
    ],
)
def test_anything_else_is_refused(content: bytes) -> None:
    assert sniff_bytes(content) is None


def test_the_check_reads_only_the_ends_of_a_large_file() -> None:
    middle = b"\x00" * (3 * 1024 * 1024)
    data = PDF_FILE[:9] + middle + PDF_FILE[9:]
    assert sniff(data[:1024], data[-1024:]) == PDF
    # The same file with its end cut off is not a PDF any more.
    assert sniff(data[:1024], (data[:-100])[-1024:]) is None


def test_the_download_name_gets_the_extension_of_its_content() -> None:
    assert display_name("scan.PNG", PNG) == "scan.PNG"
    assert display_name("scan.jpeg", JPEG) == "scan.jpeg"
    assert display_name("scan.png", PDF) == "scan.png.pdf"
    assert display_name("results", JPEG) == "results.jpg"


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "a/b.png", "..\\x.png", "x\x00.png", "..", "", "   "]
)
def test_a_filename_that_names_a_path_or_hides_a_nul_is_refused(name: str) -> None:
    with pytest.raises(Invalid) as refused:
        safe_filename(name)
    assert refused.value.code == "invalid_filename"


def test_a_filename_is_kept_as_readable_metadata() -> None:
    assert safe_filename("Wyniki badań krwi.pdf") == "Wyniki badań krwi.pdf"
    assert safe_filename("scan\r\n\t1.png") == "scan1.png"
    long = safe_filename("x" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")
