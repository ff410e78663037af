# ruff: noqa: RUF001 - typographic apostrophes in names on purpose
"""Person names by lexicon: a census first name followed by capitalised name parts.

The small English NER model misses or mislabels (as places) many names it has not seen in
context ("Please send the contract to Collin Barrera"). This rule catches a run of two to four
capitalised name parts whose first part is a known first name. The lexicon is the 1990 US
Census name frequency lists shipped inside the ``names`` package (MIT; the census data is public
domain): 5,494 first names and 88,799 surnames. It is a **different source** from the Faker
locale lists the quality benchmark draws its names from (see ``docs/benchmarks/pii.md``).

A first name that is also a common English word ("Will", "May", "Grace", "Bill", "Mark") only
counts when a later part is a census surname. Spans with technical words or digits are dropped
by :func:`gateway.pii.ner.suppressed`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from gateway.pii.contract import Finding

__all__ = ["NAME_PART", "PARTICLE", "Lexicon", "lexicon", "lexicon_names", "places"]

# A capitalised name part (hyphenated parts too), and the particles a name may hold ("van der",
# "de la"); gateway.pii.ner's cue rule reads names with the same two.
NAME_PART = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+(?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+)?"
PARTICLE = r"(?:de|du|da|di|del|della|van|von|der|den|le|la|y|bin|al|ten|ter)"
# The look-ahead for a capital first lets the regex engine skip other positions at once.
_RUN = re.compile(
    rf"(?=[A-ZÀ-ÖØ-Þ])(?<![\w@./\\-])({NAME_PART}(?:\s(?:{PARTICLE}\s){{0,2}}{NAME_PART}){{1,3}})(?![\w@/\\-])"
)

# Census first names that are also everyday English words (or month/day names).
_AMBIGUOUS = frozenset(
    """
    will may june april august bill mark grace hope joy art rich frank sonny sunny rose lily
    ivy iris dawn faith summer autumn winter page ray bob chase chance price case major king
    rusty buck pat sue don jack penny ruby pearl amber crystal daisy violet jade sky star
    miles guy gene lane dean dale glen hunter porter carter mason cash christian angel
    joy patience constance harmony melody unique precious destiny royal lucky kit nick dusty
    young long brown white black green gray grey north west south east sterling ford early
    wood love will sandy ginger brandy candy misty windy stormy holly heather merry noel
    monday tuesday friday sunday january march may
    """.split()
)
# Capitalised words that open a run but are not names (greetings, pronouns, headings).
_NOT_FIRST = frozenset(
    """
    dear hi hello hey thanks thank best kind regards please the a an this that these those
    we i you he she they it our my your his her their meeting notes subject re fw fwd
    san santa santo sao saint st los las el new fort port mount lake golden grand great little
    north south east west upper lower old royal united visual happy merry
    open read ask call use see check send email tell get run try find meet add cc bcc to from
    microsoft google apple amazon adobe oracle ibm intel meta tesla samsung sony
    """.split()
)
# Last words that make a run a place, building, organisation or product, not a person.
_NOT_LAST = frozenset(
    """
    street st road rd avenue ave lane drive way boulevard square place park bridge hall tower
    building house palace castle church cathedral station airport harbour harbor bay beach
    river lake mountain mount valley island islands city county state province district
    university college school academy institute hospital clinic center centre museum library
    bank group inc ltd llc gmbh corp company co foundation trust fund partners associates
    bowl cup award prize day eve week studio code cloud services service systems labs team
    teams office store shop hotel restaurant cafe bar club stadium arena theatre theater
    word excel outlook model chrome edge pay drive docs sheets slides mail maps music video
    photos assistant pro max plus mini air one app apps cloud suite edition series
    """.split()
)


class Lexicon:
    """First names and surnames, upper-cased as the census lists hold them."""

    def __init__(self, first: frozenset[str], last: frozenset[str]) -> None:
        self.first = first
        self.last = last

    def score(self, parts: list[str]) -> float:
        """0.88 for a known first name; 0.6 for an unknown first part before a known surname
        (below NER's 0.85, so a place the model tags wins the overlap); 0 otherwise."""
        head = parts[0].upper()
        if parts[-1].casefold() in _NOT_LAST:
            return 0.0
        if head.casefold() in _NOT_FIRST or head.casefold() in _stop_words():
            return 0.0
        surname = any(p.upper() in self.last for p in parts[1:])
        if head in self.first:
            return 0.88 if surname or head.casefold() not in _AMBIGUOUS else 0.0
        return 0.6 if parts[-1].upper() in self.last and head not in self.last else 0.0


def _read(name: str) -> frozenset[str]:
    text = resources.files("names").joinpath(name).read_text(encoding="ascii")
    return frozenset(line.split(maxsplit=1)[0] for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """Case-folded names of countries and their subdivisions (pycountry): a run of name parts
    that spells one ("Hong Kong", "Sierra Leone", "Santa Cruz de Tenerife") is a place, not a
    person, whatever its first part."""
    import pycountry

    out = {s.name.casefold() for s in pycountry.subdivisions}
    for c in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                out.add(value.casefold())
    return frozenset(out)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The census lexicon (read once, about 0.1 s)."""
    first = _read("dist.male.first") | _read("dist.female.first")
    _stop_words()
    places()
    return Lexicon(first, _read("dist.all.last"))


def lexicon_names(text: str, lex: Lexicon | None = None) -> list[Finding]:
    """PERSON findings for runs of capitalised name parts that open with a known first name;
    LOCATION where a run of two or more words spells a country or region (pycountry's names:
    "Sierra Leone", "Hong Kong", "New South Wales")."""
    from gateway.pii.ner import suppressed

    lex = lex or lexicon()
    known_places = places()
    out = []
    for m in _RUN.finditer(text):
        run = m.group(1)
        words = run.split()
        # try the run, then shorter runs from each later start (a capitalised word before a name)
        for k in range(len(words) - 1):
            start = m.start(1) + (len(" ".join(words[:k])) + 1 if k else 0)
            if " ".join(words[k:]).casefold() in known_places:
                # a country or region ("Sierra Leone", "Santa Cruz de Tenerife"), whose words
                # may read as a first name and a surname: a place, still protected
                out.append(Finding("LOCATION", start, m.end(1), 0.86))
                break
            parts = [w for w in words[k:] if not re.fullmatch(PARTICLE, w)]
            score = lex.score([p.split("-")[0] for p in parts]) if len(parts) >= 2 else 0.0
            if not score:
                continue
            span = text[start : m.end(1)]
            if not suppressed(span):
                out.append(Finding("PERSON", start, m.end(1), score))
            break
    return out
