"""One pattern pass over a text: identifiers, emails, IPs, IBANs, phone numbers.

Identifier candidates come from *runs*: digit-bearing alphanumeric groups joined by single
separators (space, hyphen, dot, slash). Every window of consecutive groups is compacted and offered
only to the specs whose length and shape fit; the checksum decides. This finds values written
compact, grouped, or spaced out digit by digit, with one regex scan for all identifiers.

Context rules keep technical text quiet: a window glued to more digits by ``-``, ``.`` or ``/``
(versions, dates, UUID parts) is not a candidate; UUIDs and hex hashes are skipped whole; a weak
identifier inside inline code or a fenced block, or right after a technical key (``port=``,
``pid``, ``timestamp`` …), needs a context word.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence

from gateway.pii.generic import Candidate, find_emails, find_ibans, find_ips, find_phones
from gateway.pii.recognizers import ID_SPECS, IdSpec, Strength

__all__ = ["PATTERN_ENTITIES", "scan_patterns", "select"]

_GROUP = r"[A-Za-z]*\d[A-Za-z0-9]*"
_LETTERS = r"[A-Za-z]{1,2}"  # a spaced-out letter of an identifier: "A 1 2 3 …", "… 1 X"
_RUN = re.compile(
    rf"(?<![A-Za-z0-9])(?:{_LETTERS}[ \-./]){{0,6}}{_GROUP}(?:[ \-./](?:{_GROUP}|{_LETTERS}))*"
    r"(?![A-Za-z0-9])"
)
_GROUP_RE = re.compile(r"[A-Za-z0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
_TECH_KEY = re.compile(
    r"(?:\b(?:id|port|pid|uid|gid|ts|timestamp|epoch|build|line|row|offset|size|bytes|count|"
    r"seq|sequence|version|commit|sha|checksum|crc|nonce|serial|order|invoice|ticket|job|"
    r"run|step|trace|span|request|account_id|instance|ami|vpc|subnet|arn)\b[\s\"'`]*[:=#]?"
    r"[\s\"'`]*|=\s*)$",
    re.IGNORECASE,
)
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SLUG_PREFIX = re.compile(r"[a-z][a-z0-9]*-$")
_MAX_LEN = max(max(s.lengths) for s in ID_SPECS)
_MAX_GROUPS = 20
_TIGHT = frozenset("-./")

_BY_LEN: dict[int, tuple[IdSpec, ...]] = {}
for _spec in ID_SPECS:
    if _spec.regex is None:
        for _n in _spec.lengths:
            _BY_LEN[_n] = (*_BY_LEN.get(_n, ()), _spec)
_OWN_REGEX = tuple(s for s in ID_SPECS if s.regex is not None)

PATTERN_ENTITIES: frozenset[str] = frozenset(s.entity for s in ID_SPECS) | {
    "EMAIL_ADDRESS", "IP_ADDRESS", "IBAN_CODE", "PHONE_NUMBER",
}  # fmt: skip


class _Ctx:
    """Lazily computed facts about the text shared by all candidates."""

    __slots__ = ("_code", "_lower", "quiet_in_code", "text")

    def __init__(self, text: str, quiet_in_code: bool = True) -> None:
        self.text = text
        self.quiet_in_code = quiet_in_code
        self._lower: str | None = None
        self._code: list[tuple[int, int]] | None = None

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def has_word(self, start: int, end: int, words: Sequence[str]) -> bool:
        if not words:
            return False
        around = self.lower[max(0, start - 48) : start] + " " + self.lower[end : end + 32]
        return any(_word_in(w, around) for w in words)

    def technical(self, start: int) -> bool:
        """Whether ``start`` is in inline code or a fenced block, or right after a technical
        key; never with ``pii.quiet_in_code: false``."""
        if not self.quiet_in_code:
            return False
        if self._code is None:
            self._code = [m.span() for m in _CODE.finditer(self.text)] if "`" in self.text else []
        if any(s <= start < e for s, e in self._code):
            return True
        return _TECH_KEY.search(self.text, max(0, start - 24), start) is not None


def _word_in(word: str, hay: str) -> bool:
    i = hay.find(word)
    while i >= 0:
        before = hay[i - 1] if i > 0 else " "
        after = hay[i + len(word)] if i + len(word) < len(hay) else " "
        if not (before.isalnum() or after.isalnum()) or not word.isascii():
            return True
        i = hay.find(word, i + 1)
    return False


def _accept(spec: IdSpec, ctx: _Ctx, start: int, end: int, raw: str) -> float | None:
    formatted = spec.raw_shape is not None and spec.raw_shape.fullmatch(raw) is not None
    worded = ctx.has_word(start, end, spec.context)
    if spec.strength is Strength.CONTEXT and not (worded or formatted):
        return None
    if spec.strength is Strength.WEAK and not (worded or formatted) and ctx.technical(start):
        return None
    return min(1.0, spec.score + (0.35 if worded else 0.0) + (0.1 if formatted else 0.0))


def _scan_runs(ctx: _Ctx, entities: frozenset[str] | None, out: list[Candidate]) -> None:
    text = ctx.text
    for run in _RUN.finditer(text):
        rtext = run.group()
        if len(rtext) >= 16 and (_UUID.search(rtext) or _HEX.search(rtext)):
            continue
        if _SLUG_PREFIX.search(text[max(0, run.start() - 24) : run.start()]):
            continue  # a resource id such as subnet-0a1b2c3d
        base = run.start()
        groups = [(m.start() + base, m.end() + base) for m in _GROUP_RE.finditer(rtext)]
        n = len(groups)
        for i in range(n):
            if i > 0 and text[groups[i][0] - 1] in _TIGHT:
                continue
            compact = ""
            for j in range(i, min(n, i + _MAX_GROUPS)):
                compact += text[groups[j][0] : groups[j][1]]
                if len(compact) > _MAX_LEN:
                    break
                specs = _BY_LEN.get(len(compact))
                if not specs or (j + 1 < n and text[groups[j][1]] in _TIGHT):
                    continue
                up = compact.upper()
                s, e = groups[i][0], groups[j][1]
                if text[s:e].count(".") == 3 and _DOTTED_QUAD.fullmatch(text, s, e):
                    continue
                for spec in specs:
                    if entities is not None and spec.entity not in entities:
                        continue
                    if not spec.shape.fullmatch(up) or not spec.check(up):
                        continue
                    score = _accept(spec, ctx, s, e, text[s:e])
                    if score is not None:
                        out.append(Candidate(s, e, spec.entity, score))


def scan_patterns(
    text: str,
    entities: frozenset[str] | None,
    phone_regions: tuple[str, ...],
    *,
    quiet_in_code: bool = True,
) -> list[Candidate]:
    """All candidates (overlapping) in ``text``; :func:`select` picks among them.
    ``quiet_in_code``: see :meth:`_Ctx.technical`."""
    ctx = _Ctx(text, quiet_in_code)
    out: list[Candidate] = []

    def want(e: str) -> bool:
        return entities is None or e in entities

    _scan_runs(ctx, entities, out)
    for spec in _OWN_REGEX:
        if want(spec.entity) and spec.regex is not None:
            for m in spec.regex.finditer(text):
                up = re.sub(r"[^A-Za-z0-9]", "", m.group()).upper()
                if spec.check(up):
                    score = _accept(spec, ctx, m.start(), m.end(), m.group())
                    if score is not None:
                        out.append(Candidate(m.start(), m.end(), spec.entity, score))
    if want("EMAIL_ADDRESS"):
        out.extend(find_emails(text))
    if want("IP_ADDRESS"):
        out.extend(find_ips(text))
    if want("IBAN_CODE"):
        out.extend(find_ibans(text))
    if want("PHONE_NUMBER"):
        # A bare national-format number in code or after a technical key needs a context word.
        out.extend(
            c
            for c in find_phones(
                text, phone_regions, [(c.start, c.end) for c in out if c.score >= 0.5]
            )
            if c.score >= 0.7 or not ctx.technical(c.start)
        )
    return out


def select(cands: Iterable[Candidate], threshold: float = 0.0) -> list[Candidate]:
    """Non-overlapping candidates scoring at least ``threshold``: highest score first, then
    longest, then earliest. Then a candidate left out that wholly holds the ones taken where it
    lies (and is longer than each) replaces them, whatever the scores, so a value is never
    masked only in part: "my number is 4111 1111 1111 1111" made a Japanese My Number of the
    first twelve digits (its context words) and left the card's last four in clear. It carries
    their types in ``also``, so the value gets the stricter of their actions. The threshold
    comes first: only a candidate that will be acted on can take another's place."""
    ranked = sorted(
        (c for c in cands if c.score >= threshold),
        key=lambda c: (-c.score, -(c.end - c.start), c.start),
    )
    # taken: disjoint, kept in text order, so only a candidate's neighbours can overlap it
    taken: list[Candidate] = []
    starts: list[int] = []
    left: list[Candidate] = []
    for c in ranked:
        i = bisect.bisect_left(starts, c.start)
        if (i and taken[i - 1].end > c.start) or (i < len(taken) and taken[i].start < c.end):
            left.append(c)
        else:
            taken.insert(i, c)
            starts.insert(i, c.start)
    for r in left:
        i = bisect.bisect_right(starts, r.start)
        if i and taken[i - 1].end > r.start:
            i -= 1
        j = i
        while j < len(taken) and taken[j].start < r.end:
            j += 1
        under = taken[i:j]  # the taken candidates r overlaps (r overlaps at least one)
        if under and all(
            r.start <= t.start and t.end <= r.end and t.end - t.start < r.end - r.start
            for t in under
        ):
            types = {e for t in under for e in (t.entity, *t.also)} | set(r.also)
            taken[i:j] = [r._replace(also=tuple(sorted(types - {r.entity})))]
            starts[i:j] = [r.start]
    return taken
