"""The NER model's internal ``Tok2Vec`` as one numpy function over the same weights.

spaCy's small English NER embeds a text through a thinc graph of about forty layers
(``spacy.Tok2Vec.v2``: ``MultiHashEmbed`` over NORM/PREFIX/SUFFIX/SHAPE, a Maxout+LayerNorm mix,
four residual window-CNN blocks, then the parser's ``Linear`` projection). :func:`fuse_tok2vec`
reads the weights once and swaps in one :class:`~thinc.api.Model` whose forward does the same
operations in the same order: thinc's own hash and gather kernels, the same float32 sums and
divisions in the layer norms, the same zero padding around each document. It differs in four
places, for speed: weights are stored transposed and contiguous (numpy's BLAS is about 1.5x faster
on them than on a transposed view), with each maxout's columns grouped by piece so the maximum
over pieces is two elementwise ``np.maximum`` calls (thinc's kernel also computes the arg-max,
which inference never reads); the layer-norm moments are computed once instead of numpy's
``mean`` then ``var``, and its scaling is done in place; and padding rows that can no longer reach
a token are not computed. (The piece-major maxout and the in-place layer norm took 15-18% off a
300-word lorem text, outputs bit-identical to the forward before them.) And what depends on a
token's own features alone — its embedding, and that embedding's products with the first
encoder block's weights — is computed once per distinct token and kept (:class:`_TokenCache`);
the first block then adds three gathered rows instead of multiplying (the same products summed
in another order: a few ulps). Outputs
match thinc's graph to within a few float32 ulps (at most 2.4e-6 on values up to 9; thinc's graph
itself varies that much between batch sizes) and the entities are identical
(``tests/unit/pii/test_ner_pipeline.py``). Inference only: the fused layer has no backward pass.

:func:`fuse_tok2vec` refuses (``RuntimeError``) a model whose graph is not the one this forward
was written for (layer names, embedding columns and tables, widths, window, padding, depth) rather
than computing something else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FusedTok2Vec", "fuse_tok2vec"]

_Float = NDArray[np.float32]
_Backprop = Callable[..., Any]

_BLOCK = "residual(expand_window>>maxout>>layernorm>>dropout)"
_HASH = "ints-getitem>>hashembed"
# The graph of ``spacy.TransitionBasedParser.v2`` around ``spacy.Tok2Vec.v2`` with
# ``MultiHashEmbed.v2`` (four attributes, no static vectors) and ``MaxoutWindowEncoder.v2``
# (depth 4), as thinc names it.
_EXPECTED_NAME = (
    "extract_features>>list2ragged>>with_array("
    + "|".join([_HASH] * 4)
    + ")>>with_array(maxout>>layernorm>>dropout)>>ragged2list>>with_array("
    + ">>".join([_BLOCK] * 4)
    + ")>>list2array>>linear"
)
_COLUMNS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
_PAD = 4  # zero rows the encoder's ``with_array`` puts around each document
_WINDOW = 1  # tokens either side in ``expand_window``


@dataclass(frozen=True, slots=True)
class _Maxout:
    # Columns grouped by piece (piece-major: all nO outputs of piece 0, then of piece 1, ...),
    # so the max over pieces is an elementwise maximum of contiguous column blocks.
    WT: _Float  # (nI, nP * nO), contiguous: numpy's BLAS is faster on it than on a transpose
    b: _Float  # (nP * nO,)
    nO: int
    nP: int


@dataclass(frozen=True, slots=True)
class _LayerNorm:
    G: _Float
    b: _Float


_Key = tuple[int, int, int, int]

# Distinct tokens kept by the cache: 3,840 bytes each (the embedding, 96 float32, and its three
# products with the first encoder block, 3 x 288), so 60 MiB at 16,384, touched as it fills.
# Text repeats its words (Zipf): a few thousand cover most tokens of most prompts.
CACHE_TOKENS = 16_384


class _TokenCache:
    """Per distinct token: the embedding layer's output (hash embeddings, the mix's maxout and
    layer norm) and its products with the three window slices of the first encoder block.

    Both depend on nothing but the token's four features (NORM, PREFIX, SUFFIX, SHAPE), so they
    are computed once per distinct feature tuple and kept: the hash gathers, the widest matrix
    product and the first block's product — over 40% of a call's arithmetic — are done only for
    tokens not seen before; the first block becomes three row gathers and two additions. Full,
    it starts afresh. Row ``capacity`` stays zero: the padding around each document. A lock
    keeps it whole if two threads share one model (the detector runs one thread or one process
    per analyzer)."""

    def __init__(self, width: int, window_out: int, capacity: int) -> None:
        # np.zeros: pages are given by the kernel as rows are first written, not up front.
        self.embedded: _Float = np.zeros((capacity + 1, width), dtype="f")
        # [previous, current, next]: a token's product with each slice of the first block's
        # weights, as that block sees it from the row after, at, and before it
        self.window: tuple[_Float, ...] = tuple(
            np.zeros((capacity + 1, window_out), dtype="f") for _ in range(3)
        )
        self.index: dict[_Key, int] = {}
        self.capacity = capacity
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.index.clear()

    def snapshot(self) -> tuple[dict[_Key, int], tuple[_Float, ...]]:
        """What the cache holds now, for :meth:`restore` (benchmarks)."""
        with self.lock:
            n = len(self.index)
            return dict(self.index), tuple(a[:n].copy() for a in (self.embedded, *self.window))

    def restore(self, snap: tuple[dict[_Key, int], tuple[_Float, ...]]) -> None:
        with self.lock:
            index, arrays = snap
            for dst, src in zip((self.embedded, *self.window), arrays, strict=True):
                dst[: len(src)] = src
            self.index = dict(index)


@dataclass(frozen=True, slots=True)
class FusedTok2Vec:
    """The weights of the NER model's tok2vec, read once."""

    ops: Any
    embed: tuple[tuple[_Float, int], ...]  # (table, seed) per attribute column
    mix: tuple[_Maxout, _LayerNorm]
    blocks: tuple[tuple[_Maxout, _LayerNorm], ...]
    proj_WT: _Float  # (nI, nO), contiguous
    proj_b: _Float
    cache: _TokenCache | None = field(default=None, compare=False)

    def embed_tokens(self, ids: NDArray[np.uint64]) -> _Float:
        """The embedding layer over rows of token features (tokens, 4): hash embeddings of each
        column side by side, then the mix's maxout and layer norm — row by row independent."""
        ops = self.ops
        cols = []
        for c, (table, seed) in enumerate(self.embed):
            keys = ops.hash(np.ascontiguousarray(ids[:, c]), seed) % table.shape[0]
            cols.append(ops.gather_add(table, keys))
        return _layernorm(_maxout(np.hstack(cols), self.mix[0]), self.mix[1])

    def _from_cache(self, ids: NDArray[np.uint64], lengths: list[int]) -> _Float | None:
        """The first encoder block's output over all documents (laid out as :meth:`__call__`
        does: each between ``_PAD`` zero rows, less the outermost row each side), from the
        cache; None when the cache is off or this call has more distinct tokens than it
        holds."""
        cache = self.cache
        if cache is None:
            return None
        keys: list[_Key] = list(zip(*ids.T.tolist(), strict=True))
        with cache.lock:
            index = cache.index
            at = [index.get(k, -1) for k in keys]
            if -1 in at:
                new = list(dict.fromkeys(k for k, i in zip(keys, at, strict=True) if i < 0))
                if len(index) + len(new) > cache.capacity:
                    index.clear()  # full: start afresh with this call's tokens
                    new = list(dict.fromkeys(keys))
                    if len(new) > cache.capacity:  # more distinct tokens than it holds
                        return None
                base, end = len(index), len(index) + len(new)
                X = self.embed_tokens(np.array(new, dtype="uint64"))
                cache.embedded[base:end] = X
                first = self.blocks[0][0]
                width = X.shape[1]
                for k, dst in enumerate(cache.window):
                    np.dot(X, first.WT[k * width : (k + 1) * width], out=dst[base:end])
                index.update(zip(new, range(base, end), strict=True))
                at = [index[k] for k in keys]
            # the documents one after the other, each between _PAD zero rows (row ``capacity``)
            pad = [cache.capacity] * _PAD
            rows: list[int] = []
            start = 0
            for n in lengths:
                if n:
                    rows += pad + at[start : start + n]
                    start += n
            rows += pad
            H = cache.embedded[rows]
            # The first block's product for row i is prev[i-1] + cur[i] + next[i+1], for the rows
            # that can still reach a token (as in __call__, the outermost row each side is not).
            before, here, after = cache.window
            Y = before[rows[:-2]]
            Y += here[rows[1:-1]]
            Y += after[rows[2:]]
        Y += self.blocks[0][0].b
        out = _layernorm(_pieces_max(Y, self.blocks[0][0]), self.blocks[0][1])
        out += H[1:-1]  # the residual
        return out

    def __call__(self, docs: Sequence[Any]) -> _Float:
        """``docs`` → one (tokens, width) array, documents one after the other."""
        ops = self.ops
        feats = [doc.to_array(_COLUMNS) for doc in docs]
        lengths = [len(f) for f in feats]
        nonempty = [f for f in feats if len(f)]
        if not nonempty:
            return np.zeros((0, self.proj_WT.shape[1]), dtype="f")
        ids = np.ascontiguousarray(np.concatenate(nonempty), dtype="uint64")
        first = self._from_cache(ids, lengths)
        if first is not None:
            H, blocks = first, self.blocks[1:]
        else:
            X = self.embed_tokens(ids)
            # The encoder sees every document between ``_PAD`` zero rows, as thinc's
            # with_array flattens them; the residual blocks run over that one array.
            zeros = np.zeros((_PAD, X.shape[1]), dtype=X.dtype)
            parts: list[_Float] = []
            start = 0
            for n in lengths:
                if n:
                    parts += [zeros, X[start : start + n]]
                    start += n
            parts.append(zeros)
            H, blocks = np.concatenate(parts), self.blocks
        # Each block widens a token's view by one row either side, so after block k the k
        # outermost rows at each end can no longer reach a token: they are dropped, not computed
        # (every row that is computed sees the same inputs as in thinc's full array).
        for maxout, norm in blocks:
            out = _layernorm(_maxout(ops.seq2col(H, _WINDOW)[1:-1], maxout), norm)
            out += H[1:-1]  # the residual, added into the fresh array (a + b == b + a exactly)
            H = out
        # H now starts at the first token; drop the padding between documents (thinc's unflatten,
        # then list2array) and project.
        if len(nonempty) > 1:
            rows, at = [], 0
            for n in lengths:
                if n:
                    rows.append(H[at : at + n])
                    at += n + _PAD
            H = np.concatenate(rows)
        Y: _Float = np.dot(H, self.proj_WT)
        Y += self.proj_b
        return Y


def _maxout(X: _Float, layer: _Maxout) -> _Float:
    Y = np.dot(X, layer.WT)
    Y += layer.b
    return _pieces_max(Y, layer)


def _pieces_max(Y: _Float, layer: _Maxout) -> _Float:
    # The maximum over pieces as numpy maxima of column blocks (exact, like thinc's kernel,
    # which also computes the arg-max that inference does not use).
    nO = layer.nO
    best: _Float = np.maximum(Y[:, :nO], Y[:, nO : 2 * nO])
    for p in range(2, layer.nP):
        np.maximum(best, Y[:, p * nO : (p + 1) * nO], out=best)
    return best


def _layernorm(X: _Float, layer: _LayerNorm) -> _Float:
    # thinc computes X.mean() and X.var(); numpy's var recomputes the mean and the deviations.
    # The same sums and divisions written out once give the same floats in half the time.
    n = X.shape[1]
    dev: _Float = X - X.sum(axis=1, keepdims=True) / n
    var = (dev * dev).sum(axis=1, keepdims=True) / n + 1e-08
    dev *= var ** (-1.0 / 2.0)  # in place: the same products, fewer temporary arrays
    dev *= layer.G
    dev += layer.b
    return dev


def _read(tok2vec: Any, cache_tokens: int = CACHE_TOKENS) -> FusedTok2Vec:
    """The weights of ``tok2vec`` after checking its graph is the one the forward implements."""
    if tok2vec.name != _EXPECTED_NAME:
        raise RuntimeError(f"NER tok2vec graph is not the one fused: {tok2vec.name!r}")
    nodes = list(tok2vec.walk())

    def named(name: str) -> list[Any]:
        return [n for n in nodes if n.name == name]

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise RuntimeError(f"NER tok2vec is not the architecture fused: {what}")

    # Structure first (names, attributes, dimensions), then the parameters.
    [extract] = named("extract_features")
    check(list(extract.attrs["columns"]) == _COLUMNS, f"columns {extract.attrs['columns']}")
    hashes, getitems = named("hashembed"), named("ints-getitem")
    check(
        [g.attrs["index"] for g in getitems] == [(slice(0, None), c) for c in range(4)],
        "embedding column order",
    )
    width = hashes[0].get_dim("nO")
    check(all(h.get_dim("nO") == width for h in hashes), "embedding widths")
    with_arrays = named("with_array(" + "|".join([_HASH] * 4) + ")")
    with_arrays += named("with_array(maxout>>layernorm>>dropout)")
    with_arrays += named("with_array(" + ">>".join([_BLOCK] * 4) + ")")
    check([w.attrs["pad"] for w in with_arrays] == [0, 0, _PAD], "with_array padding")
    windows = named("expand_window")
    check([w.attrs["window_size"] for w in windows] == [_WINDOW] * 4, "window size")
    maxouts, norms, [linear] = named("maxout"), named("layernorm"), named("linear")
    check(maxouts[0].get_dim("nI") == width * len(_COLUMNS), "mix input width")
    for m in maxouts[1:]:
        check(m.get_dim("nI") == width * (2 * _WINDOW + 1), "block input width")
    check(all(m.get_dim("nO") == width for m in maxouts), "maxout widths")
    check(all(n.get_dim("nI") == width for n in norms), "layernorm widths")
    check(linear.get_dim("nI") == width, "projection width")
    params = [(h, "E") for h in hashes] + [(m, p) for m in maxouts for p in ("W", "b")]
    params += [(n, p) for n in norms for p in ("G", "b")] + [(linear, "W"), (linear, "b")]
    check(all(n.has_param(p) for n, p in params), "parameters not initialised")
    check(all(n.get_param(p).dtype == np.float32 for n, p in params), "float32 parameters")

    def maxout(m: Any) -> _Maxout:
        nO, nP, nI = m.get_dim("nO"), m.get_dim("nP"), m.get_dim("nI")
        check(nP >= 2, "maxout pieces")
        # thinc keeps W as (nO, nP, nI) and b as (nO, nP): reorder both piece-major.
        W = m.get_param("W").reshape((nO, nP, nI)).transpose(1, 0, 2).reshape((nP * nO, nI))
        b = m.get_param("b").reshape((nO, nP)).T.reshape(nP * nO)
        return _Maxout(np.ascontiguousarray(W.T), np.ascontiguousarray(b), nO, nP)

    def norm(n: Any) -> _LayerNorm:
        return _LayerNorm(n.get_param("G"), n.get_param("b"))

    return FusedTok2Vec(
        ops=tok2vec.ops,
        embed=tuple((h.get_param("E"), int(h.attrs["seed"])) for h in hashes),
        mix=(maxout(maxouts[0]), norm(norms[0])),
        blocks=tuple((maxout(m), norm(n)) for m, n in zip(maxouts[1:], norms[1:], strict=True)),
        proj_WT=np.ascontiguousarray(linear.get_param("W").T),
        proj_b=linear.get_param("b"),
        cache=_TokenCache(width, maxouts[1].get_dim("nP") * width, cache_tokens)
        if cache_tokens > 0
        else None,
    )


def fuse_tok2vec(ner_model: Any, cache_tokens: int = CACHE_TOKENS) -> FusedTok2Vec:
    """Replace the tok2vec of a spaCy ``parser_model`` (the ``ner`` pipe's model) by the fused
    forward, in place. Returns the fused weights (for tests). ``cache_tokens`` bounds the
    per-token embedding cache (0: none)."""
    from thinc.api import Model

    if ner_model.name != "parser_model" or len(ner_model.layers) != 3:
        raise RuntimeError(f"not a spaCy transition-based parser model: {ner_model.name!r}")
    old = ner_model.get_ref("tok2vec")
    if ner_model.layers[0] is not old:
        raise RuntimeError("parser model's first layer is not its tok2vec")
    fused = _read(old, cache_tokens)

    def forward(model: Any, docs: Sequence[Any], is_train: bool) -> tuple[_Float, _Backprop]:
        if is_train:
            raise RuntimeError("the fused tok2vec is inference-only")
        return fused(docs), _no_backprop

    layer: Any = Model(
        "fused_tok2vec", forward, dims={"nO": old.get_dim("nO"), "nI": old.maybe_get_dim("nI")}
    )
    layer.ops = old.ops
    ner_model.layers[0] = layer
    ner_model.set_ref("tok2vec", layer)
    return fused


def _no_backprop(*_: Any) -> Any:
    raise RuntimeError("the fused tok2vec is inference-only")
