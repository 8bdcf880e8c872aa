"""Text as the doctor types it: search matches whatever the case and the Polish diacritics."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Letters that Unicode does not decompose into a base letter and a mark.
_UNDECOMPOSED: Final = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ß": "ss"})
_WORD: Final = re.compile(r"[0-9a-z]+")
MAX_QUERY: Final = 100


def fold(text: str) -> str:
    """Lower case, without diacritics: "Żelazo" -> "zelazo", "ŁÓDŹ" -> "lodz"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_UNDECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded words (letters and digits) of ``text``."""
    return _WORD.findall(fold(text))


def query_words(query: str) -> list[str]:
    """The words of a typed query, bounded: a pasted essay searches its first words only."""
    return words(query[:MAX_QUERY])
