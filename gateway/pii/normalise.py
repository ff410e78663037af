# ruff: noqa: RUF001 - the confusables table is made of look-alike letters on purpose
"""Normalisation against evasion, with an offset map back to the original text.

A :class:`View` is a text the recognizers scan plus, for each of its characters, the span of the
original text it came from. Findings in a view are mapped back with :meth:`View.to_original`, so
the original characters (zero-width joiners, fullwidth digits, Cyrillic look-alikes and all) are
what gets replaced.

Folds: NFKC; removal of zero-width, bidi, tag and other invisible characters and soft hyphens;
decimal digits of every script to ASCII; dash variants to ``-``; a table of Cyrillic and Greek
letters that look like Latin ones.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["View", "identity_view", "normalise"]

_INVISIBLE = frozenset(
    [
        *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180E),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *(0x3164, 0xFEFF, 0xFFA0),
        *range(0xFE00, 0xFE10),
        *range(0xE0000, 0xE0080),
    ]
)

_DASHES = frozenset([0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63])

# Letters of other scripts that render like Latin ones (a subset of Unicode's confusables that
# matters for identifiers: capitals and the lowercase letters used in emails).
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ո": "n",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ι": "i", "κ": "k",
    "α": "a", "ρ": "p", "τ": "t", "υ": "u",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class View:
    """A scanned text; ``starts[i]``/``ends[i]`` is the original span of character ``i``.

    ``starts``/``ends`` are empty for the identity view (the text is the original).
    """

    text: str
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()

    @property
    def is_identity(self) -> bool:
        return not self.starts

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if not self.starts:
            return start, end
        if end <= start:
            return self.starts[start], self.starts[start]
        return self.starts[start], self.ends[end - 1]


def identity_view(text: str) -> View:
    return View(text)


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    cp = ord(ch)
    if cp in _INVISIBLE:
        return ""
    if cp in _DASHES:
        return "-"
    conf = _CONFUSABLES.get(ch)
    if conf is not None:
        return conf
    if unicodedata.category(ch) == "Nd":
        return str(unicodedata.decimal(ch))
    out = unicodedata.normalize("NFKC", ch)
    if out == ch:
        return ch
    # NFKC may yield characters that need folding again (e.g. fullwidth → ASCII is done, but a
    # compatibility form of a Greek letter yields a Greek letter).
    return "".join(_CONFUSABLES.get(c, c) for c in out if ord(c) not in _INVISIBLE)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def normalise(text: str) -> View:
    """Fold ``text`` for scanning. Text that folding leaves as it is (ASCII, or accented letters
    that are already in their folded form) is returned as the identity view (no copy)."""
    if text.isascii():
        return View(text)
    folds = [(m.start(), _fold_char(m.group())) for m in _NON_ASCII.finditer(text)]
    if all(text[i] == out for i, out in folds):
        return View(text)
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = 0  # the ASCII run before each folded character is copied, and mapped, in one piece
    for i, out in folds:
        if at < i:
            parts.append(text[at:i])
            starts.extend(range(at, i))
            ends.extend(range(at + 1, i + 1))
        parts.append(out)
        starts.extend([i] * len(out))
        ends.extend([i + 1] * len(out))
        at = i + 1
    if at < len(text):
        parts.append(text[at:])
        starts.extend(range(at, len(text)))
        ends.extend(range(at + 1, len(text) + 1))
    return View("".join(parts), tuple(starts), tuple(ends))
