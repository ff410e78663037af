"""Putting pseudonymised values back into answers, whole or streamed, and scanning the output.

The placeholder map lives in the :class:`PlaceholderRestorer` of one request and nowhere else.
A :class:`Streamer` releases text as soon as it cannot be the start of a placeholder of this
request, so it holds back at most one placeholder's length minus one character.

Output scanning: after restoring, a non-streamed answer is scanned with the pattern recognizers;
identifiers, contacts and numbers that were not in the prompt are counted in ``new_pii`` and,
with ``output_new_pii = "redact"``, replaced by ``[TYPE]``. A streamed answer's text is counted at
``flush``; with ``"redact"`` it is screened as it goes: the last :data:`HOLD` characters are held
back (a value of that length or shorter is whole before any of it leaves); once :data:`STEP`
more have come, the text before the held part is scanned with the :data:`CONTEXT` characters
released before it (a phone word before a number), new values in it are replaced, and a value
that straddles the cut holds the cut back to its start. The price is latency: the client sees the
text :data:`HOLD` to :data:`HOLD` + :data:`STEP` characters late (the rest at the end), and CPU:
one pattern scan per :data:`STEP` characters.

Tool-call arguments are JSON text: they are scanned value by value (every string, and every
number as written), so that with ``"redact"`` a new value is replaced inside its JSON string (a
number becomes the string ``"[TYPE]"``) and the arguments stay valid JSON; arguments that are not
JSON are screened as text. A streamed call's arguments are held whole under ``"redact"`` and
released, screened, with the choice's ``finish_reason`` (the SDKs assemble arguments before a
tool runs, so nothing waits on the pieces); without it they stream as restored and are counted.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.pii.actions import MAX_SUBJECTS, canonical, redact, subject_digest
from gateway.pii.contract import ANSWER_TEXTS
from gateway.pii.generic import Candidate

__all__ = ["PlaceholderRestorer", "Streamer", "TokenStreamer"]

PatternScan = Callable[[str], list[Candidate]]
HOLD = 96  # characters a screened stream holds back (longer than any identifier's usual form)
STEP = 64  # new characters that make a screen worth running (one scan per STEP, not per delta)
CONTEXT = 48  # characters already released that the next screen still reads, for context


class Streamer:
    """Implements :class:`gateway.pii.contract.StreamRestorer` for one stream of text."""

    def __init__(self, owner: PlaceholderRestorer, *, json_string: bool = False) -> None:
        self._owner = owner
        self._json = json_string
        self._pending = ""
        self._released: list[str] = []
        self._screens = owner.redacts_streams and not json_string
        self._whole = owner.redacts_streams and json_string  # tool-call arguments: held whole
        self._unscreened = ""  # restored text held back for the output screen
        self._context = ""  # the last released text (as the backend wrote it), for context

    @property
    def held(self) -> int:
        return len(self._pending)

    def feed(self, text: str) -> str:
        if not self._owner.mapping:
            out = text
        else:
            buf = self._pending + text
            cut = self._owner.hold_from(buf)
            self._pending = buf[cut:]
            out = self._owner.replace(buf[:cut], json_string=self._json)
        if self._screens:
            return self._screen(out, final=False)
        self._released.append(out)
        if self._whole:
            return ""
        return out

    def flush(self) -> str:
        out = self._owner.replace(self._pending, json_string=self._json)
        self._pending = ""
        if self._screens:
            return self._screen(out, final=True)
        self._released.append(out)
        whole = "".join(self._released)
        self._released = []
        if self._json:
            screened = self._owner.screen_arguments(whole)
            return screened if self._whole else out
        self._owner.count_new(whole)
        return out

    def _screen(self, text: str, *, final: bool) -> str:
        """Release what the output screen has cleared (new values replaced and counted)."""
        buf = self._unscreened + text
        if not final and len(buf) < HOLD + STEP:
            self._unscreened = buf
            return ""
        ctx = self._context
        cut = len(buf) if final else len(buf) - HOLD
        found = sorted(self._owner.new_values(ctx + buf), key=lambda c: c.start)
        spans: list[tuple[int, int, str]] = []
        for c in found:
            start, end = c.start - len(ctx), c.end - len(ctx)
            if end <= 0:
                continue  # inside text already released (and screened then)
            if start < cut < end:
                cut = max(0, start)  # a value across the cut: hold it back whole
            if end <= cut:
                spans.append((max(0, start), end, c.entity))
        spans = [sp for sp in spans if sp[1] <= cut]
        out = buf[:cut]
        for start, end, entity in reversed(spans):
            self._owner.new_pii[entity] += 1
            out = out[:start] + redact(entity) + out[end:]
        self._unscreened = buf[cut:]
        self._context = (ctx + buf[:cut])[-CONTEXT:]
        return out


class TokenStreamer:
    """A streamed choice's ``logprobs`` entries, restored as :meth:`PlaceholderRestorer.
    restore_tokens` restores a whole answer's: each run of tokens that spells a placeholder
    becomes one entry of the value. Entries that may still be the start of a placeholder are
    held back (as the choice's text is) and released, merged, once the placeholder is whole or
    cannot be one; what is held at the end comes out with :meth:`flush`."""

    def __init__(self, owner: PlaceholderRestorer) -> None:
        self._owner = owner
        self._pending: list[Any] = []

    def feed(self, tokens: list[Any]) -> list[Any]:
        owner = self._owner
        buf = self._pending + tokens
        spelled = owner.spelled(buf)
        if spelled is None:
            self._pending = []  # entries of another shape: relayed as they are
            return buf
        joined, ends, matches = spelled
        # Hold from the token where a placeholder may be starting, and from the first token of
        # a whole placeholder that ends in a held token (its tokens are merged together).
        cut = owner.hold_from(joined)
        keep = bisect.bisect_right(ends, cut) if cut < len(joined) else len(buf)
        for m in reversed(matches):
            if keep and m.start() < ends[keep - 1] < m.end():
                keep = bisect.bisect_right(ends, m.start())
        self._pending = buf[keep:]
        if not keep:
            return []
        # what is released was scanned once: the matches wholly inside it
        done = ends[keep - 1]
        inside = [m for m in matches if m.end() <= done]
        return owner.merge_tokens(buf[:keep], joined[:done], ends[:keep], inside)

    def flush(self) -> list[Any]:
        out, self._pending = self._pending, []
        return self._owner.restore_tokens(out) if out else []

    @property
    def held(self) -> int:
        return len(self._pending)


class PlaceholderRestorer:
    """Implements :class:`gateway.pii.contract.Restorer` for one request."""

    def __init__(
        self,
        mapping: Mapping[str, str],
        known: Iterable[tuple[str, str]],
        scan: PatternScan | None,
        redact_new: bool = False,
        subject_key: bytes | None = None,
    ) -> None:
        self.mapping = dict(mapping)  # placeholder -> original value
        self._known = {canonical(e, v) for e, v in known}
        self._scan = scan
        self._redact_new = redact_new
        self.new_pii: Counter[str] = Counter()
        # the keyed digests of the new values (the data-subject index), with ``subject_key``
        self._subject_key = subject_key
        self.new_subjects: set[str] = set()
        self.longest = max((len(p) for p in self.mapping), default=0)
        self.prefixes = frozenset(p[:k] for p in self.mapping for k in range(1, len(p)))
        self._re = (
            re.compile("|".join(re.escape(p) for p in sorted(self.mapping, key=len, reverse=True)))
            if self.mapping
            else None
        )

    def hold_from(self, buf: str) -> int:
        """Where the end of ``buf`` may be the start of one of this request's placeholders
        (``len(buf)`` where it cannot): what a stream must hold back."""
        prefixes = self.prefixes
        lo = max(0, len(buf) - self.longest + 1)
        p = buf.find("<", lo)
        while p >= 0:
            if buf[p:] in prefixes:
                return p
            p = buf.find("<", p + 1)
        return len(buf)

    def replace(self, text: str, *, json_string: bool = False) -> str:
        if self._re is None or "<" not in text:
            return text
        if json_string:
            return self._re.sub(lambda m: json.dumps(self.mapping[m.group()])[1:-1], text)
        return self._re.sub(lambda m: self.mapping[m.group()], text)

    def restore_text(self, text: str) -> str:
        return self.replace(text)

    def _new(self, text: str) -> list[Candidate]:
        if self._scan is None or not text:
            return []
        found = [
            c
            for c in self._scan(text)
            if canonical(c.entity, text[c.start : c.end]) not in self._known
        ]
        if self._subject_key is not None and len(self.new_subjects) < MAX_SUBJECTS:
            for c in found:
                self.new_subjects.add(
                    subject_digest(self._subject_key, c.entity, text[c.start : c.end])
                )
        return found

    def count_new(self, text: str) -> None:
        for c in self._new(text):
            self.new_pii[c.entity] += 1

    def new_values(self, text: str) -> list[Candidate]:
        """Values in ``text`` the output scan finds that were not in the prompt."""
        return self._new(text)

    @property
    def redacts_streams(self) -> bool:
        return self._redact_new and self._scan is not None

    def _screen_text(self, restored: str) -> str:
        """Count the new values in restored text; with ``redact``, replace them."""
        found = self._new(restored)
        for c in found:
            self.new_pii[c.entity] += 1
        if not (self._redact_new and found):
            return restored
        for c in sorted(found, key=lambda c: c.start, reverse=True):
            restored = restored[: c.start] + redact(c.entity) + restored[c.end :]
        return restored

    def _finish(self, text: str) -> str:
        return self._screen_text(self.replace(text))

    def screen_arguments(self, restored: str) -> str:
        """Tool-call arguments (JSON text, already restored): new values counted in each string
        and number; with ``redact`` replaced there and the JSON written again (unchanged text
        when nothing was replaced). Text that is not JSON is screened as text."""
        if self._scan is None or not restored:
            return restored
        try:
            doc = json.loads(restored)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            return self._screen_text(restored)
        changed = False

        def walk(value: Any) -> Any:
            nonlocal changed
            if isinstance(value, str):
                out = self._screen_text(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                written = json.dumps(value)
                out = self._screen_text(written)
                if out == written:
                    return value
            elif isinstance(value, list):
                return [walk(v) for v in value]
            elif isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            else:
                return value
            changed = changed or out != value
            return out

        try:
            screened = walk(doc)
        except RecursionError:
            return self._screen_text(restored)
        if not changed:
            return restored
        return json.dumps(screened, ensure_ascii=False)

    def restore_json(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Restore (and scan) the answer's texts in place; returns ``body``. Each message's
        ``content`` (a string or text parts), ``refusal`` and ``reasoning_content`` (DeepSeek's
        reasoner), and its tool-call arguments; a member of an unexpected shape is left as it
        is (an answer of any shape passes through, never an error here)."""
        choices = body.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            found_before = sum(self.new_pii.values())
            self._restore_choice(endpoint, choice)
            self._logprobs(choice, found_before)
        return body

    def _logprobs(self, choice: dict[str, Any], found_before: int) -> None:
        """A choice's ``logprobs`` spell its tokens: with new personal data redacted from its
        texts they would still spell it, so they go; otherwise the tokens that spell a
        placeholder are merged into one entry holding the restored value (the sequence's
        log-probability is the sum of its tokens', its alternatives are not known)."""
        lp = choice.get("logprobs")
        if not isinstance(lp, dict):
            return
        if self._redact_new and sum(self.new_pii.values()) > found_before:
            choice["logprobs"] = None
            return
        for key in ("content", "refusal"):
            tokens = lp.get(key)
            if isinstance(tokens, list) and tokens:
                lp[key] = self.restore_tokens(tokens)

    def restore_tokens(self, tokens: list[Any]) -> list[Any]:
        """Chat ``logprobs`` entries (``token``, ``logprob``, ``bytes``, ``top_logprobs``) with
        each run of tokens that spells a placeholder merged into one entry of the restored
        value; entries of another shape leave the list as it is."""
        spelled = self.spelled(tokens)
        return tokens if spelled is None else self.merge_tokens(tokens, *spelled)

    def spelled(self, tokens: list[Any]) -> tuple[str, list[int], list[re.Match[str]]] | None:
        """What ``tokens`` spell: their text joined, where each token's text ends in it, and
        this request's placeholders found in it; None when there is nothing to restore or an
        entry is of another shape."""
        texts = [
            t["token"] for t in tokens if isinstance(t, dict) and isinstance(t.get("token"), str)
        ]
        if self._re is None or len(texts) != len(tokens):
            return None
        joined = "".join(texts)
        return joined, list(itertools.accumulate(map(len, texts))), list(self._re.finditer(joined))

    def merge_tokens(
        self, tokens: list[Any], joined: str, ends: list[int], matches: list[re.Match[str]]
    ) -> list[Any]:
        """``tokens`` with each run spelling one of ``matches`` merged into one restored entry."""
        groups: list[list[int]] = []  # [first, last] token index of each run to merge
        for m in matches:
            first = bisect.bisect_right(ends, m.start())  # the token the placeholder starts in
            last = bisect.bisect_left(ends, m.end())  # and the one it ends in
            if groups and first <= groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], last)
            else:
                groups.append([first, last])
        if not groups:
            return tokens
        out: list[Any] = []
        done = 0
        for first, last in groups:
            out += tokens[done:first]
            start = ends[first - 1] if first else 0
            text = self.replace(joined[start : ends[last]])
            probs = [t.get("logprob") for t in tokens[first : last + 1]]
            total = sum(probs) if all(isinstance(p, int | float) for p in probs) else None
            out.append(
                {"token": text, "logprob": total, "bytes": list(text.encode()), "top_logprobs": []}
            )
            done = last + 1
        return out + tokens[done:]

    def _restore_choice(self, endpoint: str, choice: dict[str, Any]) -> None:
        if endpoint == "completions" and isinstance(choice.get("text"), str):
            choice["text"] = self._finish(choice["text"])
        msg = choice.get("message")
        if not isinstance(msg, dict):
            return
        for key in ANSWER_TEXTS:
            if isinstance(msg.get(key), str):
                msg[key] = self._finish(msg[key])
        content = msg.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = self._finish(part["text"])
        calls = msg.get("tool_calls")
        fns = (
            [c.get("function") for c in calls if isinstance(c, dict)]
            if isinstance(calls, list)
            else []
        )
        fns.append(msg.get("function_call"))
        for fn in fns:
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                args = self.replace(fn["arguments"], json_string=True)
                fn["arguments"] = self.screen_arguments(args)

    def stream(self, *, json_string: bool = False) -> Streamer:
        return Streamer(self, json_string=json_string)

    def stream_tokens(self) -> TokenStreamer:
        """A streamed choice's chat ``logprobs`` entries (``content`` or ``refusal``)."""
        return TokenStreamer(self)
