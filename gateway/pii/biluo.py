"""spaCy's greedy BILUO decoding for the ``ner`` pipe, in numpy over the same weights.

spaCy decodes NER one token at a time (``Parser.greedy_parse``): for every state it sums the
lower layer's precomputed rows for the state's three context tokens (the next token, the open
entity's first token, the token before the next one; ``StateC.set_context_tokens``), adds the
bias, takes the maxout, multiplies by the upper ``Linear``, masks the moves that are not valid
(``BiluoPushDown``: Begin/In/Last/Unit/Out), takes the first best and applies it. Every move
consumes one token. Here that loop re-takes the GIL at each step and pays BLIS's per-call cost.

:class:`GreedyBiluo` takes the same decisions with a handful of array operations per batch. While
no entity is open, a state's features are only the next token and two padding rows, so the move
chosen at a token is a function of that token: it is computed for every token of the batch at
once. Once an entity opens at ``e``, the state at ``b`` sees ``(b, e, b - 1)``, a function of
``b`` and ``e`` only: In-or-Last is computed for the next few tokens after every token where an
entity could open, again in one product. A short walk in Python then follows the states
spaCy would visit, skipping the tokens inside each entity. Scores are bit-identical to spaCy's:
the same numpy product for the lower layer (same operands, same batch), the same float32 sums in
the same order, and the upper layer through BLIS's ``sgemm`` as spaCy calls it (BLIS computes a
row the same way whatever the number of rows; numpy's BLAS may differ in the last bit).

Validity is spaCy's for documents without preset entities (``make_doc`` output): Begin and Unit
not on a whitespace token, Begin not on the last token nor before a sentence start, In not on the
last token nor before a sentence start, Last always (with the open label), Out while no entity is
open, ``U-`` (label 0) never. :meth:`GreedyBiluo.decode` refuses documents with preset entities.
:func:`read_biluo` refuses (``RuntimeError``) a model whose moves, feature layout or sizes are not
the ones this decoder was written for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import blis.py
import numpy as np
from numpy.typing import NDArray

__all__ = ["GreedyBiluo", "read_biluo"]

_Float = NDArray[np.float32]
_Int = NDArray[np.intp]
_NF = 3  # context tokens per state: B(0), E(0), B(0) - 1 (``set_context_tokens``, n == 3)
_AHEAD = 8  # In-or-Last decisions precomputed after each possible entity start


@dataclass(frozen=True, slots=True)
class GreedyBiluo:
    """The weights and move table of a ``ner`` pipe, read once (:func:`read_biluo`)."""

    lower_W: _Float  # (nF * nO * nP, nI), as the lower layer's forward multiplies it
    pad: _Float  # (nF, nO, nP): the rows for a missing context token
    bias: _Float  # (nO, nP)
    upper_W: _Float  # (n_moves, nO), contiguous
    upper_b: _Float  # (n_moves,)
    labels: tuple[str, ...]  # entity label of each move ("" for U- and O)
    begin: NDArray[np.bool_]  # (n_moves,) which moves are B-<label>, U-<label>, O
    unit: NDArray[np.bool_]
    out: int
    in_of: _Int  # (n_moves,) for a Begin move: the In and Last moves of its label
    last_of: _Int

    def decode(self, docs: Sequence[Any], tokvecs: _Float) -> list[list[tuple[int, int, str]]]:
        """Entities (start token, end token, label) per document, as spaCy's greedy parse and
        ``set_annotations`` give them. ``tokvecs``: the NER tok2vec's output for ``docs`` as
        one batch (documents one after the other)."""
        if not docs:
            return []
        attrs = [d.to_array(["IS_SPACE", "SENT_START", "ENT_IOB"]) for d in docs]
        lengths = [len(d) for d in docs]
        if not sum(lengths):
            return [[] for _ in docs]
        cols = np.concatenate([a for a in attrs if len(a)]).astype(np.int64)
        if cols[:, 2].any():
            raise ValueError("documents with preset entities are not supported")
        n = len(cols)
        ends = np.cumsum(lengths)
        last = np.zeros(n, dtype=bool)
        last[ends[np.asarray(lengths) > 0] - 1] = True
        space = cols[:, 0] == 1
        # A sentence start on the next token (the first token of each document starts one, but
        # B(1) is never a document's first token; the last token has no next).
        next_starts = np.zeros(n, dtype=bool)
        next_starts[:-1] = cols[1:, 1] == 1
        next_starts &= ~last

        cached = self._precompute(tokvecs)  # (n + 1, nF, nO, nP); row 0 is the padding
        # Moves with no entity open: a function of the next token only.
        closed = self._scores(((cached[1:, 0] + self.pad[1]) + self.pad[2]) + self.bias)
        ok = np.zeros(closed.shape, dtype=bool)
        ok[:, self.out] = True
        ok[:, self.unit] = ~space[:, None]
        ok[:, self.begin] = ~(space | last | next_starts)[:, None]
        move = np.where(ok, closed, -np.inf).argmax(axis=1)  # first best, as spaCy's

        ents: list[tuple[int, int, int]] = []
        stops: dict[int, int] = {}  # entity start → token where Last is taken
        opens = np.flatnonzero(self.begin[move])
        if len(opens):
            stops = self._stops(cached, opens, move, last, next_starts)
        cursor = 0
        for p in np.flatnonzero(move != self.out).tolist():
            if p < cursor:
                continue  # inside an entity spaCy's walk has already passed
            if self.unit[move[p]]:
                ents.append((p, p + 1, int(move[p])))
                cursor = p + 1
            else:
                stop = stops[p]
                ents.append((p, stop + 1, int(move[p])))
                cursor = stop + 1
        out: list[list[tuple[int, int, str]]] = [[] for _ in docs]
        starts = ends - np.asarray(lengths)
        where = np.searchsorted(ends, [s for s, _, _ in ents], side="right")
        for (s, e, m), k in zip(ents, where.tolist(), strict=True):
            base = int(starts[k])
            out[k].append((s - base, e - base, self.labels[m]))
        return out

    def _precompute(self, tokvecs: _Float) -> _Float:
        # As ``PrecomputableAffine``'s forward: padding row first, then one product into the rest.
        nF, nO, nP = self.pad.shape
        cached = np.empty((tokvecs.shape[0] + 1, nF * nO * nP), dtype=np.float32)
        np.dot(tokvecs, self.lower_W.T, out=cached[1:])
        cached = cached.reshape((cached.shape[0], nF, nO, nP))
        cached[0] = self.pad
        return cached

    def _scores(self, summed: _Float) -> _Float:
        """Maxout over the pieces, then the upper layer through BLIS as spaCy's ``sgemm``."""
        hidden = summed[:, :, 0]
        for p in range(1, summed.shape[2]):  # the same floats as max(axis=2), faster for 2
            hidden = np.maximum(hidden, summed[:, :, p])
        scores: _Float = blis.py.gemm(hidden, self.upper_W, trans2=True, beta=0.0)
        scores += self.upper_b
        return scores

    def _stops(
        self,
        cached: _Float,
        opens: _Int,
        move: _Int,
        last: NDArray[np.bool_],
        next_starts: NDArray[np.bool_],
    ) -> dict[int, int]:
        """For each token where a Begin would be taken: the token where the entity closes."""
        stops: dict[int, int] = {}
        todo = opens  # entity starts still open after the tokens looked at so far
        frm = opens + 1  # the first token not yet looked at, per start
        while len(todo):
            # Up to _AHEAD tokens after each start, never past its document's last token.
            offs = np.arange(_AHEAD)
            b = frm[:, None] + offs[None, :]
            n_left = np.maximum.accumulate(last[np.minimum(b, len(last) - 1)], axis=1)
            inside = np.ones_like(n_left)
            inside[:, 1:] = ~n_left[:, :-1]  # stop after the document's last token
            rows, cols = np.nonzero(inside)
            bb = b[rows, cols]
            ee = todo[rows]
            summed = ((cached[bb + 1, 0] + cached[ee + 1, 1]) + cached[bb, 2]) + self.bias
            scores = self._scores(summed)
            m_in, m_last = self.in_of[move[ee]], self.last_of[move[ee]]
            r = np.arange(len(bb))
            s_in, s_last = scores[r, m_in], scores[r, m_last]
            in_ok = ~(last[bb] | next_starts[bb])
            keep_in = in_ok & ((s_in > s_last) | ((s_in == s_last) & (m_in < m_last)))
            close = np.zeros(b.shape, dtype=bool)
            close[rows, cols] = ~keep_in
            closed = close.any(axis=1)
            first = close.argmax(axis=1)
            for i in np.flatnonzero(closed).tolist():
                stops[int(todo[i])] = int(b[i, first[i]])
            todo, frm = todo[~closed], frm[~closed] + _AHEAD
        return stops


def read_biluo(ner: Any) -> GreedyBiluo:
    """The decoder for a spaCy ``ner`` pipe, after checking that its moves, state features and
    layers are the ones :class:`GreedyBiluo` implements."""
    from spacy.pipeline._parser_internals.ner import BiluoPushDown

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise RuntimeError(f"NER model is not the one the greedy BILUO decoder reads: {what}")

    check(isinstance(ner.moves, BiluoPushDown), f"moves {type(ner.moves).__name__}")
    check(ner.cfg.get("beam_width", 1) == 1, "beam search configured")
    model = ner.model
    check(model.name == "parser_model" and len(model.layers) == 3, f"model {model.name!r}")
    check(bool(model.attrs.get("has_upper")), "no upper layer")
    check(not model.attrs.get("unseen_classes"), "unseen classes")
    lower, upper = model.get_ref("lower"), model.get_ref("upper")
    check(lower.name == "precomputable_affine" and upper.name == "linear", "layer names")
    nF, nO, nP, nI = (lower.get_dim(d) for d in ("nF", "nO", "nP", "nI"))
    check(nF == _NF, f"{nF} state features (the NER layout has {_NF})")
    check(nP >= 2, "lower layer is not a maxout")
    check(upper.get_dim("nI") == nO, "upper input width")
    n_moves = ner.moves.n_moves
    check(upper.get_dim("nO") == n_moves, "upper output is not one score per move")
    params = [(lower, "W"), (lower, "b"), (lower, "pad"), (upper, "W"), (upper, "b")]
    check(all(m.has_param(p) for m, p in params), "parameters not initialised")
    check(all(m.get_param(p).dtype == np.float32 for m, p in params), "float32 parameters")
    check(lower.get_param("W").shape == (nF, nO, nP, nI), "lower weight layout")
    check(lower.get_param("pad").shape == (1, nF, nO, nP), "padding layout")

    names = [ner.moves.get_class_name(i) for i in range(n_moves)]
    check(names[-2:] == ["U-", "O"], f"last moves {names[-2:]}")
    ent_labels = [name[2:] for name in names if name.startswith("B-")]
    expected = [f"{a}-{lab}" for a in "BILU" for lab in ent_labels] + ["U-", "O"]
    check(names == expected and all(ent_labels), "move table is not B/I/L/U per label, U-, O")
    k = len(ent_labels)
    begin = np.zeros(n_moves, dtype=bool)
    begin[:k] = True
    unit = np.zeros(n_moves, dtype=bool)
    unit[3 * k : 4 * k] = True
    in_of = np.zeros(n_moves, dtype=np.intp)
    last_of = np.zeros(n_moves, dtype=np.intp)
    in_of[:k] = np.arange(k, 2 * k)
    last_of[:k] = np.arange(2 * k, 3 * k)
    labels = tuple(name[2:] for name in names)
    return GreedyBiluo(
        lower_W=lower.get_param("W").reshape((nF * nO * nP, nI)),
        pad=lower.get_param("pad")[0],
        bias=lower.get_param("b"),
        upper_W=np.ascontiguousarray(upper.get_param("W")),
        upper_b=upper.get_param("b"),
        labels=labels,
        begin=begin,
        unit=unit,
        out=n_moves - 1,
        in_of=in_of,
        last_of=last_of,
    )
