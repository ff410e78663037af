"""The reduced NER pipeline (``ner`` alone, numpy gemm, the fused tok2vec forward, one batch per
call, our greedy BILUO decoder) tags exactly as the stock tok2vec + ner."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from faker import Faker

from bench.pii.filler import business
from bench.pii.speed import make_text
from bench.pii_eval.corpus import labelled, technical
from gateway.pii.biluo import read_biluo
from gateway.pii.engine import Analyzer
from gateway.pii.fused_tok2vec import CACHE_TOKENS, FusedTok2Vec, fuse_tok2vec
from gateway.pii.ner import MODEL_NAME, NerEngine, name_windows

TEXTS = [
    "Please send the contract to Sean Coleman before Friday. Please update my records:",
    "Nicholas Bean called yesterday about the delivery to Boston and the office in Paris.",
    "Frau Magarete Schmidtke flies from Berlin to the Golden Gate Bridge on Monday.",
    "Harish Sehgal and Fleur Lemmens met Dr. Anna Kowalski at Heathrow Airport in London.",
    "The quarterly report is due next week and the numbers are still being checked.",
]


def _varied() -> list[str]:
    """About 600 texts: quality-corpus sentences (names in nine locales, identifiers), Faker
    lorem paragraphs, business filler, technical text and the speed benchmark's mixed texts."""
    rng = random.Random(3)
    fake = Faker("en_US")
    fake.seed_instance(3)
    texts = [s.text for s in labelled(seed=7, per_type=4, names=150)]
    texts += [fake.paragraph(nb_sentences=4) for _ in range(100)]
    texts += [" ".join(business(rng) for _ in range(rng.randint(1, 6))) for _ in range(60)]
    texts += technical(n=40)
    texts += [make_text(w, rng, fake, f)[0] for w in (50, 300) for f in ("business", "lorem")]
    return texts + TEXTS + ["", " ", "Hi"]


VARIED = _varied()


def _ents(docs: Any) -> list[list[tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs]


def _per_text(find: Any, texts: list[str], one_by_one: bool) -> list[Any]:
    """``find(texts)`` as one batch, or one text per call."""
    return [find([t])[0] for t in texts] if one_by_one else find(texts)


@pytest.fixture(scope="module")
def stock() -> Any:
    import spacy

    return spacy.load(MODEL_NAME, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])


@pytest.fixture(scope="module")
def engine(full: Analyzer) -> NerEngine:
    ner = full._ner
    assert ner is not None
    return ner


def test_loads_ner_alone_with_numpy_gemm_and_the_fused_tok2vec(engine: NerEngine) -> None:
    nlp = engine._nlp
    assert nlp.pipe_names == ["ner"]
    model = nlp.get_pipe("ner").model
    assert all(not node.ops.use_blis for node in model.walk())
    assert model.get_ref("tok2vec").name == "fused_tok2vec"
    assert model.layers[0] is model.get_ref("tok2vec")


def test_entities_match_the_stock_tok2vec_and_ner_pipeline(engine: NerEngine, stock: Any) -> None:
    ours = _ents(engine._tag(TEXTS))
    assert ours == _ents(stock.pipe(TEXTS))
    assert any(ours)  # the comparison saw entities, not only empty documents


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one batch", "one text per call"])
def test_fused_entities_match_stock_on_varied_texts(
    engine: NerEngine, stock: Any, one_by_one: bool
) -> None:
    theirs = _ents(stock.pipe(VARIED))
    ours = _per_text(lambda ts: _ents(engine._tag(ts)), VARIED, one_by_one)
    assert ours == theirs
    assert sum(map(len, theirs)) > 500


def test_fused_entities_match_stock_on_name_windows(engine: NerEngine, stock: Any) -> None:
    pieces = [t[s:e] for t in VARIED for s, e in name_windows(t, engine._common)]
    theirs = _ents(stock.pipe(pieces))
    assert _ents(engine._tag(pieces)) == theirs
    assert sum(map(len, theirs)) > 200


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one batch", "one text per call"])
def test_decoder_entities_match_stock_on_varied_texts(
    engine: NerEngine, stock: Any, one_by_one: bool
) -> None:
    assert engine._biluo is not None
    theirs = _ents(stock.pipe(VARIED))
    ours = _per_text(engine._entities, VARIED, one_by_one)
    assert ours == theirs
    assert sum(map(len, theirs)) > 500
    assert any(e - s > 1 for d in theirs for s, e, _ in d)  # multi-token entities were decoded


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one batch", "one text per call"])
def test_decoder_entities_match_stock_on_name_windows(
    engine: NerEngine, stock: Any, one_by_one: bool
) -> None:
    pieces = [t[s:e] for t in VARIED for s, e in name_windows(t, engine._common)]
    theirs = _ents(stock.pipe(pieces))
    ours = _per_text(engine._entities, pieces, one_by_one)
    assert ours == theirs
    assert sum(map(len, theirs)) > 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n",
        "John",
        "Paris",
        "John Smith",
        "Sean  Coleman\n\n  Boston",  # whitespace tokens: no Begin or Unit on them
        "The Museum of Modern Art in New York City and the Golden Gate Bridge in San Francisco",
        "Nicholas Bean.",
    ],
)
def test_decoder_matches_spacy_loop_on_edge_cases(engine: NerEngine, stock: Any, text: str) -> None:
    assert engine._entities([text, text]) == _ents(stock.pipe([text, text]))


def test_decoder_and_spacy_loop_agree_in_one_engine(engine: NerEngine) -> None:
    spacy_loop = [
        [(e.start_char, e.end_char, e.label_) for e in d.ents] for d in engine._tag(TEXTS)
    ]
    assert engine._entities(TEXTS) == spacy_loop
    assert any(spacy_loop)


def test_decoder_refuses_preset_entities(engine: NerEngine) -> None:
    from spacy.tokens import Span

    assert engine._biluo is not None
    doc = engine._nlp.make_doc("Sean Coleman lives in Boston")
    doc.set_ents([Span(doc, 0, 2, label="PERSON")])
    with pytest.raises(ValueError, match="preset entities"):
        engine._biluo.decode([doc], np.zeros((len(doc), 64), dtype="f"))


def test_engine_keeps_spacy_loop_behind_a_flag() -> None:
    engine = NerEngine(biluo=False)
    assert engine._biluo is None
    assert engine._entities(TEXTS[:2]) != [[], []]


def _ner_pipe(**cfg: Any) -> Any:
    """A blank English ``ner`` pipe with two labels, initialised (random weights)."""
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner", config={"model": {"@architectures": "spacy.TransitionBasedParser.v2",
                                                "state_type": "ner", "hidden_width": 64,
                                                "maxout_pieces": 2, "use_upper": True,
                                                **cfg, "tok2vec": {
                                                    "@architectures": "spacy.HashEmbedCNN.v2",
                                                    "width": 96, "depth": 4, "embed_size": 2000,
                                                    "window_size": 1, "maxout_pieces": 3,
                                                    "subword_features": True,
                                                    "pretrained_vectors": None}}})  # fmt: skip
    doc = nlp.make_doc("Sean Coleman went to Boston")
    nlp.initialize(
        lambda: [Example.from_dict(doc, {"entities": ["B-PERSON", "L-PERSON", "O", "O", "U-GPE"]})]
    )
    return ner


def test_decoder_reads_a_model_of_the_layout_it_implements() -> None:
    decoder = read_biluo(_ner_pipe())
    assert set(decoder.labels) == {"PERSON", "GPE", ""}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"maxout_pieces": 1}, "not a maxout"),
        ({"use_upper": False}, "no upper layer"),
        ({"extra_state_tokens": True}, "state features"),
    ],
)
def test_decoder_refuses_a_model_it_was_not_written_for(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        read_biluo(_ner_pipe(**cfg))


def test_decoder_refuses_a_parser_and_beam_search() -> None:
    import spacy

    nlp = spacy.blank("en")
    parser = nlp.add_pipe("parser")
    nlp.initialize()
    with pytest.raises(RuntimeError, match="moves ArcEager"):
        read_biluo(parser)
    ner = _ner_pipe()
    ner.cfg["beam_width"] = 4
    with pytest.raises(RuntimeError, match="beam search"):
        read_biluo(ner)


def test_fused_tok2vec_output_equals_thinc_graph(engine: NerEngine, stock: Any) -> None:
    docs = [engine._nlp.make_doc(t) for t in VARIED[::7]]
    fused = engine._nlp.get_pipe("ner").model.get_ref("tok2vec").predict(docs)
    thinc = stock.get_pipe("ner").model.get_ref("tok2vec").predict(docs)
    assert fused.shape == thinc.shape == (sum(map(len, docs)), 64)
    np.testing.assert_allclose(fused, thinc, rtol=0, atol=1e-5)


def test_engine_without_fusing_keeps_thinc_graph() -> None:
    engine = NerEngine(fused=False)
    model = engine._nlp.get_pipe("ner").model
    assert model.get_ref("tok2vec").name.startswith("extract_features>>")
    assert _ents(engine._tag(TEXTS[:2])) != [[], []]


def _parser_model(**changes: Any) -> Any:
    from spacy.ml.models.parser import build_tb_parser_model
    from spacy.ml.models.tok2vec import (
        MaxoutWindowEncoder,
        MultiHashEmbed,
        build_Tok2Vec_model,
    )

    embed: dict[str, Any] = {
        "width": 96,
        "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
        "rows": [5000, 1000, 2500, 2500],
        "include_static_vectors": False,
    }
    encode: dict[str, Any] = {"width": 96, "depth": 4, "window_size": 1, "maxout_pieces": 3}
    for key, value in changes.items():
        (embed if key in embed else encode)[key] = value
    encode["width"] = embed["width"]
    tok2vec = build_Tok2Vec_model(MultiHashEmbed(**embed), MaxoutWindowEncoder(**encode))
    return build_tb_parser_model(tok2vec, "ner", False, 64, 2, True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"depth": 2}, "graph is not the one fused"),
        ({"depth": 6}, "graph is not the one fused"),
        ({"attrs": ["NORM", "PREFIX", "SUFFIX"], "rows": [5000, 1000, 2500]}, "not the one fused"),
        ({"attrs": ["ORTH", "PREFIX", "SUFFIX", "SHAPE"]}, "columns"),
        ({"window_size": 2}, "padding"),  # the encoder pads window x depth rows
        ({"width": 128}, "parameters not initialised"),  # same shape, but no weights yet
        ({}, "parameters not initialised"),
    ],
)
def test_refuses_a_model_it_was_not_written_for(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        fuse_tok2vec(_parser_model(**changes))


def test_refuses_a_model_that_is_not_a_parser() -> None:
    from thinc.api import Linear

    with pytest.raises(RuntimeError, match="not a spaCy transition-based parser"):
        fuse_tok2vec(Linear(4, 4))


def test_fused_layer_refuses_training(engine: NerEngine) -> None:
    layer = engine._nlp.get_pipe("ner").model.get_ref("tok2vec")
    with pytest.raises(RuntimeError, match="inference-only"):
        layer([engine._nlp.make_doc("Sean Coleman")], is_train=True)


def _fused_of(engine: NerEngine) -> Any:
    layer = engine._nlp.get_pipe("ner").model.get_ref("tok2vec")
    return layer  # the thinc layer whose forward closes over the FusedTok2Vec


def test_token_cache_gives_the_output_and_entities_of_embedding_every_token(
    stock: Any,
) -> None:
    # A cache of 64 tokens fills and starts afresh many times over these texts, and the longer
    # texts have more distinct tokens than it holds (they bypass it): the tok2vec output stays
    # thinc's, and the entities those of an engine that embeds every token afresh.
    small, none = NerEngine(token_cache=64), NerEngine(token_cache=0)
    texts = VARIED[::3]

    def ents(engine: NerEngine) -> Any:
        return lambda ts: _ents(engine._tag(ts))

    for _ in range(2):  # the second pass reads what the first left in the cache
        assert _per_text(ents(small), texts, True) == _per_text(ents(none), texts, True)
    docs = [small._nlp.make_doc(t) for t in VARIED[::7]]
    cached = _fused_of(small).predict(docs)
    thinc = stock.get_pipe("ner").model.get_ref("tok2vec").predict(docs)
    np.testing.assert_allclose(cached, thinc, rtol=0, atol=1e-5)


def test_token_cache_embeds_each_distinct_token_once() -> None:
    engine = NerEngine(token_cache=1000)
    assert isinstance(engine.tok2vec, FusedTok2Vec) and engine.tok2vec.cache is not None
    cache = engine.tok2vec.cache
    text = "Anna met Anna and Bob met Anna in Paris, and Bob met Anna again."
    doc = engine._nlp.make_doc(text)
    first = _fused_of(engine).predict([doc])
    distinct = len({(t.norm, t.prefix, t.suffix, t.shape) for t in doc})
    assert len(cache.index) == distinct < len(doc)
    again = _fused_of(engine).predict([engine._nlp.make_doc(text)])
    assert len(cache.index) == distinct  # nothing new embedded
    np.testing.assert_array_equal(first, again)


def test_token_cache_size_comes_from_the_settings() -> None:
    from gateway.config.pii import PiiSettings
    from gateway.pii.detector import options_from

    # the setting's default is written out (the configuration does not import the model's code)
    assert options_from(PiiSettings()).token_cache == 16_384 == CACHE_TOKENS
    off = Analyzer(options_from(PiiSettings(token_cache=0)))
    assert off._ner is not None and off._ner.tok2vec is not None
    assert off._ner.tok2vec.cache is None
    small = Analyzer(options_from(PiiSettings(token_cache=100)))
    assert small._ner is not None and small._ner.tok2vec is not None
    assert small._ner.tok2vec.cache is not None and small._ner.tok2vec.cache.capacity == 100
    text = "Harish Sehgal met Dr. Anna Kowalski in London."
    assert off.analyze([text], None) == small.analyze([text], None)


def test_token_cache_snapshot_restores_what_it_held() -> None:
    # the speed benchmark times a detector that has served other texts by restoring a snapshot
    engine = NerEngine(token_cache=1000)
    assert engine.tok2vec is not None and engine.tok2vec.cache is not None
    cache = engine.tok2vec.cache
    doc = engine._nlp.make_doc("Anna met Bob in Paris on Monday.")
    before = _fused_of(engine).predict([doc])
    snap = cache.snapshot()
    held = dict(cache.index)
    cache.clear()
    engine._nlp.get_pipe("ner").model.get_ref("tok2vec").predict(
        [engine._nlp.make_doc("Quite other words fill the rows the snapshot had.")]
    )
    cache.restore(snap)
    assert cache.index == held
    np.testing.assert_array_equal(_fused_of(engine).predict([doc]), before)
    assert cache.index == held  # nothing had to be embedded again
