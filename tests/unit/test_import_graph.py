"""The import graph is one-way (.importlinter, checked by lint-imports), and the picture in
docs/architecture.md is that contract: the same layers, in the same order, the same siblings."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contract_layers() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    raw = config["importlinter:contract:layers"]["layers"]
    return [_normal(line) for line in raw.splitlines() if line.strip()]


def _picture_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Dependency direction", 1)[1]
    picture = section.split("```", 2)[1]
    # Each line: the layer, then (after two spaces or more) an optional note.
    return [
        _normal(re.split(r"\s{2,}\(|\s{3,}", line.strip())[0])
        for line in picture.splitlines()
        if line.strip()
    ]


def _normal(layer: str) -> str:
    return " ".join(layer.replace("consult.", "").replace("/", "").split())


def test_the_picture_in_architecture_md_is_the_contract() -> None:
    assert _picture_layers() == _contract_layers()


def test_lint_imports_keeps_every_contract() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
