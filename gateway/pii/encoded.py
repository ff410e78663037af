"""Decoded views of a text: base64 tokens, URL percent-escapes, JSON ``\\uXXXX`` escapes.

Each view maps its characters back to the original text, so a finding inside a decoded value
replaces the original encoded characters: a whole base64 token, or exactly the escapes that
spelled the value.
"""

from __future__ import annotations

import binascii
import codecs
import re

from gateway.pii.normalise import View

__all__ = ["decoded_views"]

# A token of the base64 alphabets (standard and URL-safe) of eleven characters or more before
# the padding: eight bytes, the shortest identifier we check (an Irish PPS number), encode to
# eleven.
_B64 = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{11,}={0,2}(?![A-Za-z0-9+/=_\-])")
_URLSAFE = str.maketrans("-_", "+/")  # the URL-safe alphabet read as the standard one
_ESCAPE = re.compile(r"(?:%[0-9A-Fa-f]{2})+|(?:\\u[0-9A-Fa-f]{4})+")


def _printable(s: str) -> bool:
    if not s:
        return False
    ok = sum(c.isprintable() or c in "\n\t\r" for c in s)
    return ok >= 0.95 * len(s)


def _b64_views(text: str) -> list[View]:
    views: list[View] = []
    for m in _B64.finditer(text):
        tok = m.group()
        if tok.isdigit() or tok.isalpha() or len(tok.rstrip("=")) % 4 == 1:
            continue  # a number, a word, or a length no base64 has
        if tok.lower() == tok:
            # No capital letter: a snake_case name, a hex digest, a UUID's piece. The base64 of
            # text has one (a digit or a capital at the start of a group of three bytes gives
            # one; none of 10,200 encoded values of bench/pii_eval lacked one).
            continue
        padded = tok.translate(_URLSAFE) + "=" * (-len(tok) % 4)
        try:
            decoded = binascii.a2b_base64(padded, strict_mode=True).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if not _printable(decoded):
            continue
        n = len(decoded)
        views.append(View(decoded, (m.start(),) * n, (m.end(),) * n))
    return views


def _decode_escapes(seq: str) -> list[tuple[str, int, int]]:
    """Characters of an escape run with their spans inside ``seq``."""
    out: list[tuple[str, int, int]] = []
    if seq.startswith("%"):
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first = 0
        for k in range(0, len(seq), 3):
            chars = dec.decode(bytes([int(seq[k + 1 : k + 3], 16)]))
            for c in chars:
                out.append((c, first, k + 3))
            if chars:
                first = k + 3
        return out
    k = 0
    while k < len(seq):
        cp = int(seq[k + 2 : k + 6], 16)
        if 0xD800 <= cp < 0xDC00 and k + 12 <= len(seq):
            lo = int(seq[k + 8 : k + 12], 16)
            if 0xDC00 <= lo < 0xE000:
                out.append((chr(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)), k, k + 12))
                k += 12
                continue
        out.append((chr(cp), k, k + 6))
        k += 6
    return out


def _escape_view(text: str) -> View | None:
    if "%" not in text and "\\u" not in text:
        return None
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    found = False
    for m in _ESCAPE.finditer(text):
        found = True
        for i in range(pos, m.start()):
            parts.append(text[i])
            starts.append(i)
            ends.append(i + 1)
        for c, s, e in _decode_escapes(m.group()):
            parts.append(c)
            starts.append(m.start() + s)
            ends.append(m.start() + e)
        pos = m.end()
    if not found:
        return None
    for i in range(pos, len(text)):
        parts.append(text[i])
        starts.append(i)
        ends.append(i + 1)
    return View("".join(parts), tuple(starts), tuple(ends))


# A value spelled out one character at a time with one separator ("G.B.8.2.W.E.S.T…",
# "j o h n . s m i t h @ …", "+-6-1-4-…"): six or more characters, each followed by the same
# separator (a literal "." inside a dotted run is a character like any other: "n...s" is "n.s").
_SPELLED = re.compile(r"(\S)([.\- _/,])(?:\S\2){4,}\S")


_SEPARATORS = ".-_/,"  # and the space, found by _SPACED below
_RUN_END = {sep: re.compile(re.escape(sep) + "+") for sep in _SEPARATORS}
_SPACED = re.compile(r" \S \S \S \S ")  # a literal first character: the regex skips fast


def _may_be_spelled(text: str) -> bool:
    """Cheap test before the regex (which costs ~50 ns a character, on every text): a spelled
    run puts one separator at every other position, so one of the text's two interleaved
    halves holds five of it in a row, with letters or digits between them (not spaces, not a
    rule of dashes); for the space itself, a regex that starts with one is as quick."""
    if len(text) < 11:
        return False
    for k in (0, 1):
        seps, chars = text[k::2], text[1 - k :: 2]  # seps[i] is text[k + 2i]
        for sep in _SEPARATORS:
            run = sep * 5
            p = seps.find(run)  # str.find: far quicker than a regex scan
            while p >= 0:
                q = _RUN_END[sep].match(seps, p).end()  # type: ignore[union-attr]
                between = chars[p + k : q - 1 + k]  # text[k + 2i + 1] is chars[i + k]
                if between.strip(sep) and sum(c.isalnum() for c in between) >= 4:
                    return True  # (a rule of dashes between rules of dashes is not)
                p = seps.find(run, q)  # each run is looked at once
    return _SPACED.search(text) is not None


def _spelled_views(text: str) -> list[View]:
    """Each spelled-out run, its separators taken out (offsets back into ``text``)."""
    if not _may_be_spelled(text):
        return []
    views = []
    for m in _SPELLED.finditer(text):
        start, end = m.span()
        sep = m.group(2)
        # a first or last character glued to a word ("is + 6 1 …", "… 7 8 thanks") is that
        # word's, not the value's
        if start > 0 and text[start - 1] not in (sep, " "):
            start += 2
        if end < len(text) and text[end] not in (sep, " "):
            end -= 2
        if end - start < 11:
            continue
        idx = range(start, end, 2)  # the characters; the separators sit between them
        if sum(text[i].isalnum() for i in idx) < 4:
            continue  # a rule or an ellipsis, not a value
        views.append(View("".join(text[i] for i in idx), tuple(idx), tuple(i + 1 for i in idx)))
    return views


def decoded_views(text: str) -> list[View]:
    """Views worth scanning besides the text itself (empty for most texts)."""
    views = _b64_views(text) + _spelled_views(text)
    esc = _escape_view(text)
    if esc is not None:
        views.append(esc)
    return views
