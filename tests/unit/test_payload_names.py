"""Payload model names are unique: /api/openapi.json names its schemas by class name, so two
models of one name would overwrite each other there (the ratings' SpecialtyFiguresOut once
replaced the dashboard's, and the queue overview failed its own document)."""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel

import consult.app  # noqa: F401  (every route's models imported)


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_no_two_payload_models_share_a_name() -> None:
    by_name: dict[str, set[str]] = defaultdict(set)
    for model in _subclasses(BaseModel):
        if model.__module__.startswith("consult.") and "[" not in model.__name__:
            by_name[model.__name__].add(model.__module__)
    assert {name: mods for name, mods in by_name.items() if len(mods) > 1} == {}
