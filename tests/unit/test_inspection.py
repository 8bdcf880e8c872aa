"""Parsing an upload whole: active content is found wherever a PDF nests it, and what an honest
document holds (links, annotations) passes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from consult.documents.inspection import inspect
from consult.documents.rules import ActiveContent, ImageTooLarge, UnreadableDocument
from consult.documents.sniff import JPEG, PDF


def saved(tmp_path: Path, build: Callable[[pikepdf.Pdf], None]) -> Path:
    document = pikepdf.new()
    document.add_blank_page()
    build(document)
    path = tmp_path / "doc.pdf"
    document.save(path)
    return path


def link_annotation(action: pikepdf.Dictionary) -> Callable[[pikepdf.Pdf], None]:
    """A link on the page whose action is a direct dictionary inside a direct annotation."""

    def build(document: pikepdf.Pdf) -> None:
        annotation = pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50], A=action
        )
        document.pages[0].obj.Annots = pikepdf.Array([annotation])

    return build


def test_javascript_nested_in_a_links_action_is_found(tmp_path: Path) -> None:
    script = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    with pytest.raises(ActiveContent):
        inspect(saved(tmp_path, link_annotation(script)), PDF)


def test_a_chained_launch_action_is_found(tmp_path: Path) -> None:
    launch = pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe"))
    first = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org"))
    first.Next = launch
    with pytest.raises(ActiveContent):
        inspect(saved(tmp_path, link_annotation(first)), PDF)


def test_a_plain_link_passes(tmp_path: Path) -> None:
    link = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org"))
    inspect(saved(tmp_path, link_annotation(link)), PDF)


def test_a_pdf_without_pages_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    with pytest.raises(UnreadableDocument):
        inspect(path, PDF)


def test_a_jpeg_is_judged_as_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), "teal").save(path, "PNG")  # a PNG where a JPEG was sniffed
    with pytest.raises(UnreadableDocument):
        inspect(path, JPEG)
    Image.new("RGB", (40, 30), "teal").save(path, "JPEG")
    inspect(path, JPEG)


def test_a_jpeg_over_the_pixel_bound_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    Image.new("L", (10_000, 5_001)).save(path, "JPEG")  # 50,010,000 pixels of black
    with pytest.raises(ImageTooLarge):
        inspect(path, JPEG)
