"""A labelled synthetic corpus: Faker names in several locales, checksum-valid identifiers for
every jurisdiction (generated, then checked with python-stdnum or our checksum), the same values
under evasion transforms, a technical-text corpus with no personal data at all, and business
text: record numbers (orders, invoices, tickets) that are no one's phone, beside real phone
numbers after a word that says so.

Deterministic for a seed. Every value is synthetic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker
from stdnum import luhn
from stdnum.au import abn, acn, tfn
from stdnum.be import nn
from stdnum.ca import sin
from stdnum.cn import ric
from stdnum.cz import rc
from stdnum.de import idnr
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.ie import pps
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale, iva
from stdnum.jp import in_ as jp_in
from stdnum.kr import rrn
from stdnum.nl import bsn

from gateway.pii.recognizers.apac import au_medicare_valid, sg_nric_valid
from gateway.pii.recognizers.east_asia import tw_id_valid

__all__ = ["CHECKSUM_TYPES", "Sample", "business", "evasions", "labelled", "technical"]


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # gold (start, end, entity)
    variant: str = "plain"  # evasion transform; for names, the Faker locale


def _fill(rng: random.Random, shape: str) -> str:
    return "".join(
        str(rng.randint(0, 9)) if c == "d" else rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
        if c == "L" else c
        for c in shape
    )  # fmt: skip


def _until(rng: random.Random, make: Callable[[], str], ok: Callable[[str], bool]) -> str:
    for _ in range(20000):
        v = make()
        if ok(v):
            return v
    raise RuntimeError("no valid value generated")


def _ok(module: object) -> Callable[[str], bool]:
    def f(v: str) -> bool:
        try:
            return bool(module.is_valid(v))  # type: ignore[attr-defined]
        except Exception:
            return False

    return f


def _kr(rng: random.Random) -> str:
    y, m, d = rng.randint(50, 99), rng.randint(1, 12), rng.randint(1, 28)
    return _until(rng, lambda: f"{y:02d}{m:02d}{d:02d}{rng.choice('12')}" + _fill(rng, "dddddd"),
                  _ok(rrn))  # fmt: skip


def _cn(rng: random.Random) -> str:
    y, m, d = rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
    area = rng.choice(["110105", "310104", "110101", "310101"])
    return _until(
        rng, lambda: f"{area}{y}{m:02d}{d:02d}" + _fill(rng, "ddd") + rng.choice("0123456789X"),
        _ok(ric))  # fmt: skip


def _cz(rng: random.Random) -> str:
    y, m, d = rng.randint(60, 99), rng.randint(1, 12) + rng.choice([0, 50]), rng.randint(1, 28)
    return _until(rng, lambda: f"{y:02d}{m:02d}{d:02d}" + _fill(rng, "dddd"), _ok(rc))


def _be(rng: random.Random) -> str:
    y, m, d = rng.randint(50, 99), rng.randint(1, 12), rng.randint(1, 28)
    return _until(rng, lambda: f"{y:02d}{m:02d}{d:02d}" + _fill(rng, "ddddd"), _ok(nn))


def _fr(rng: random.Random) -> str:
    return _until(rng, lambda: rng.choice("12") + f"{rng.randint(50, 99):02d}"
                  f"{rng.randint(1, 12):02d}" + _fill(rng, "dddddddddd"), _ok(nir))  # fmt: skip


def _it_cf(rng: random.Random, fake: Faker) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return _until(rng, lambda: "".join(rng.choice(letters) for _ in range(6))
                  + f"{rng.randint(40, 99):02d}" + rng.choice("ABCDEHLMPRST")
                  + f"{rng.randint(1, 28):02d}" + rng.choice("AFHL") + _fill(rng, "ddd")
                  + rng.choice(letters), _ok(codicefiscale))  # fmt: skip


def _gen(rng: random.Random) -> dict[str, tuple[Callable[[], str], str]]:
    f = _fill
    return {
        # entity: (generator, written form label used in the sentence)
        "TW_NATIONAL_ID": (lambda: _until(rng, lambda: f(rng, "L") + rng.choice("12")
                           + f(rng, "dddddddd"), tw_id_valid), "national ID"),
        "KR_RRN": (lambda: _kr(rng), "resident registration number"),
        "CN_RIC": (lambda: _cn(rng), "resident identity card number"),
        "JP_MY_NUMBER": (lambda: _until(rng, lambda: f(rng, "dddddddddddd"), _ok(jp_in)),
                         "My Number"),
        "AU_TFN": (lambda: _until(rng, lambda: f(rng, "ddddddddd"), _ok(tfn)), "TFN"),
        "AU_ABN": (lambda: _until(rng, lambda: f(rng, "ddddddddddd"), _ok(abn)), "ABN"),
        "AU_ACN": (lambda: _until(rng, lambda: f(rng, "ddddddddd"), _ok(acn)), "ACN"),
        "AU_MEDICARE": (lambda: _until(rng, lambda: rng.choice("23456") + f(rng, "ddddddddd"),
                        au_medicare_valid), "Medicare number"),
        "SG_NRIC_FIN": (lambda: _until(rng, lambda: rng.choice("STFGM") + f(rng, "dddddddL"),
                        sg_nric_valid), "NRIC"),
        "IN_AADHAAR": (lambda: _until(rng, lambda: rng.choice("23456789") + f(rng, "ddddddddddd"),
                       _ok(aadhaar)), "Aadhaar"),
        "IN_PAN": (lambda: _until(rng, lambda: f(rng, "LLL") + rng.choice("PC") + f(rng, "LddddL"),
                   _ok(pan)), "PAN"),
        "IT_FISCAL_CODE": (lambda: _it_cf(rng, Faker()), "codice fiscale"),
        "IT_VAT_CODE": (lambda: _until(rng, lambda: f(rng, "ddddddd") + "001" + f(rng, "d"),
                        _ok(iva)), "partita IVA"),
        "DE_TAX_ID": (lambda: _until(rng, lambda: rng.choice("123456789") + f(rng, "dddddddddd"),
                      _ok(idnr)), "Steuer-IdNr"),
        "NL_BSN": (lambda: _until(rng, lambda: f(rng, "ddddddddd"), _ok(bsn)), "BSN"),
        "UK_NHS": (lambda: _until(rng, lambda: f(rng, "dddddddddd"), _ok(nhs)), "NHS number"),
        "CA_SIN": (lambda: _until(rng, lambda: rng.choice("1234567") + f(rng, "dddddddd"),
                   _ok(sin)), "SIN"),
        "CZ_BIRTH_NUMBER": (lambda: _cz(rng), "rodné číslo"),
        "BE_NATIONAL_NUMBER": (lambda: _be(rng), "national number"),
        "IE_PPS": (lambda: _until(rng, lambda: f(rng, "dddddddL"), _ok(pps)), "PPS number"),
        "FR_NIR": (lambda: _fr(rng), "NIR"),
        "CREDIT_CARD": (lambda: _until(rng, lambda: "4" + f(rng, "ddddddddddddddd"),
                        _ok(luhn)), "card"),
    }  # fmt: skip


CHECKSUM_TYPES = tuple(_gen(random.Random(0)))
_LOCALES = ["en_US", "en_GB", "en_AU", "de_DE", "it_IT", "fr_FR", "nl_NL", "en_IN", "es_ES"]

_ID_TEMPLATES = [
    "Please update my records: my {label} is {v}.",
    "{label}: {v}",
    "Hi, the {label} on file should be {v}, can you check it?",
    "I filled in the form with {v} as the {label} but it was rejected.",
]
# Places: real city names (Faker locales whose city lists are real towns and do not depend on
# PYTHONHASHSEED, which it_IT's does) and English
# country names; one template opens the sentence with the place, the case the NER gating skips
# when the word is common English.
_PLACE_LOCALES = ["de_DE", "pl_PL", "nl_NL", "es_ES", "en_US"]
_PLACE_TEMPLATES = [
    "I moved to {c} last year.",
    "Our office in {c} is closed on Monday.",
    "{c} is where the conference takes place.",
    "She flew back from {c} yesterday.",
    "The shipment to {c} was delayed.",
]
_NAME_TEMPLATES = [
    "My name is {p} and I need help with my account.",
    "Please send the contract to {p} before Friday.",
    "{p} called yesterday about the invoice.",
    "Can you draft a reply to {p}? She asked about the delivery.",
    "Meeting notes: {p} will own the migration plan.",
]


def _place(fake: Faker, locale: str) -> str:
    if locale != "en_US":
        return str(fake.city())
    while True:  # English country names, without the long official forms
        c = str(fake.country())
        if "(" not in c and "," not in c and len(c.split()) <= 2:
            return c


def labelled(seed: int = 7, per_type: int = 40, names: int = 300, places: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    gens = _gen(rng)
    out: list[Sample] = []
    for etype, (make, label) in gens.items():
        for i in range(per_type):
            v = make()
            tpl = _ID_TEMPLATES[i % len(_ID_TEMPLATES)]
            pre, post = tpl.split("{v}")
            pre = pre.format(label=label)
            out.append(
                Sample(pre + v + post.format(label=label), ((len(pre), len(pre) + len(v), etype),))
            )
    for i in range(names):
        fake = Faker(_LOCALES[i % len(_LOCALES)])
        fake.seed_instance(seed + i)
        p = fake.name()
        tpl = _NAME_TEMPLATES[i % len(_NAME_TEMPLATES)]
        pre = tpl.split("{p}")[0]
        span = (len(pre), len(pre) + len(p), "PERSON")
        out.append(Sample(tpl.format(p=p), (span,), _LOCALES[i % len(_LOCALES)]))
    for i in range(places):
        locale = _PLACE_LOCALES[i % len(_PLACE_LOCALES)]
        fake = Faker(locale)
        fake.seed_instance(seed + 2000 + i)
        c = _place(fake, locale)
        tpl = _PLACE_TEMPLATES[(i // len(_PLACE_LOCALES)) % len(_PLACE_TEMPLATES)]
        pre = tpl.split("{c}")[0]
        out.append(Sample(tpl.format(c=c), ((len(pre), len(pre) + len(c), "LOCATION"),), locale))
    for i in range(per_type * 2):
        fake = Faker(_LOCALES[i % len(_LOCALES)])
        fake.seed_instance(seed + 1000 + i)
        e = fake.email()
        pre = "You can reach me at "
        out.append(
            Sample(pre + e + " any time.", ((len(pre), len(pre) + len(e), "EMAIL_ADDRESS"),))
        )
    return out


_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_CYR = {"A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "H": "\u041d", "K": "\u041a",
        "M": "\u041c", "O": "\u041e", "P": "\u0420", "T": "\u0422", "X": "\u0425"}  # fmt: skip


def _variants(v: str) -> dict[str, str]:
    return {
        "fullwidth": "".join(_FULLWIDTH.get(c, c) for c in v),
        "zero-width": "\u200b".join(v[i : i + 3] for i in range(0, len(v), 3)),
        "soft-hyphen": "\u00ad".join(v[i : i + 4] for i in range(0, len(v), 4)),
        "arabic-digits": "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in v),
        "confusable": "".join(_CYR.get(c, c) for c in v),
        "spaced": " ".join(v),
    }


def evasions(samples: list[Sample]) -> list[Sample]:
    """Every identifier sample again under each evasion transform."""
    out: list[Sample] = []
    for s in samples:
        start, end, etype = s.spans[0]
        if etype not in CHECKSUM_TYPES:
            continue
        for name, v in _variants(s.text[start:end]).items():
            text = s.text[:start] + v + s.text[end:]
            out.append(Sample(text, ((start, start + len(v), etype),), name))
    return out


_TECH = [
    "Deploy {svc} to {region} on {inst} nodes and mount the {svc2} bucket.",
    "Upgrade the chart from v{ver} to {ver2}; the image digest is sha256:{hex64}.",
    "Request {uuid} timed out after {ms} ms on {ip}:{port}.",
    "Commit {hex40} bumped {pkg}=={ver} and fixed the {svc} retry loop.",
    "```\ntimeout_ms = {ms}\nport = {port}\nbuild_id = {num10}\n```",
    "The {svc} cluster in {region} runs {inst} with {n} replicas behind {svc2}.",
    "Set `max_tokens={n}` and `seed={num10}` for the run {uuid}.",
    "ami-{hex17} in subnet-{hex8} of vpc-{hex8} ({region}).",
    "Epoch {num10} corresponds to build {ver} of {pkg}.",
    "kubectl -n {pkg} rollout restart deploy/{pkg}-api && kubectl get pods -o wide",
    # a coding agent's instructions and tool documentation (written for this corpus, in the
    # style such prompts take): markdown headings and lists, capitalised tool names and verbs
    "# Environment\nYou are working inside a sandboxed checkout of {pkg}.",
    "- **metadata**: Merge the new keys into the existing ones before the {svc} call.",
    "Call `TaskGet` before you update a task; invoke Workflow to run {n} of them at once.",
    "Caveat: scripts run headless, so Wrote files stay where they were written.",
    "Find them again with Glob, then Edit them in place and run the {pkg} tests.",
]
_SVCS = ["EKS", "S3", "RDS", "ECS", "Lambda", "GKE", "BigQuery", "Kubernetes", "Redis", "Kafka",
         "CloudFront", "DynamoDB", "SQS", "Aurora", "Istio", "Envoy"]  # fmt: skip
_INST = ["m5.large", "c6i.2xlarge", "t3.micro", "r6g.xlarge", "p4d.24xlarge", "g5.12xlarge"]
_REG = ["us-east-1", "eu-west-2", "ap-southeast-1", "eu-central-1"]
_PKG = ["numpy", "litestar", "presidio", "torch", "vllm", "sqlalchemy", "redis"]


def technical(seed: int = 11, n: int = 600) -> list[str]:
    rng = random.Random(seed)

    def hx(k: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(k))

    out = []
    for i in range(n):
        tpl = _TECH[i % len(_TECH)]
        out.append(tpl.format(
            svc=rng.choice(_SVCS), svc2=rng.choice(_SVCS), region=rng.choice(_REG),
            inst=rng.choice(_INST), ver=f"{rng.randint(0, 3)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}",
            ver2=f"{rng.randint(0, 3)}.{rng.randint(0, 40)}", hex64=hx(64), hex40=hx(40),
            hex17=hx(17), hex8=hx(8), uuid=f"{hx(8)}-{hx(4)}-{hx(4)}-{hx(4)}-{hx(12)}",
            ms=rng.randint(100, 99999), ip=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            port=rng.randint(1024, 65535), pkg=rng.choice(_PKG), n=rng.randint(1, 4096),
            num10=str(rng.randint(1_600_000_000, 1_800_000_000)),
        ))  # fmt: skip
    return out


_RECORDS = [
    "Order {rec} was dispatched yesterday; please confirm the delivery address.",
    "Re: invoice #{rec} - the amount due is unchanged.",
    "Ticket: {rec} is waiting for the customer's reply.",
    "Your booking reference {rec} is confirmed for Friday.",
    "Tracking number {rec} shows the parcel at the depot.",
    "Case no. {rec} was escalated to the second line.",
    "Claim {rec} needs the signed form before we pay.",
    "Transaction ID: {rec} failed and was reversed.",
    # a phone word's letters inside another word before the record's number ("hotel", "cancel-
    # lation", "excellent", "recall", "telemetry"), the label itself a common business one
    "Hotel reservation {rec} is held until noon.",
    "Cancellation number {rec} was sent by email.",
    "Excellent - account {rec} is now active.",
    "Product recall: policy {rec} covers the refund.",
    "Telemetry alert for customer {rec} was closed.",
]
_PHONE_TEMPLATES = [
    "Please call me on {phone} after four.",
    "My mobile is {phone}, text before calling.",
    "Phone: {phone} (office hours only).",
    "Ring the depot on {phone} about order {rec}.",
    "Ph: {phone} (after hours)",
    "Tel. {phone} - ask for accounts.",
    "Mob {phone}, any time.",
]
_NATIONAL = {
    "AU": "04dd ddd ddd",
    "GB": "07d00 dddddd",
    "US": "(212) 555-0ddd",
    "DE": "01512 ddddddd",
}


def business(seed: int = 13, n: int = 400) -> list[Sample]:
    """Business text: record numbers labelled as such (10-11 digits, half with a leading 0, each
    a valid phone number somewhere by its digits alone — so only the label tells), none of them
    gold; and phone numbers after a phone word (gold ``PHONE_NUMBER``; validity checked with
    ``phonenumbers`` itself)."""
    import phonenumbers

    rng = random.Random(seed)

    def valid(v: str, region: str) -> bool:
        try:
            return bool(phonenumbers.is_valid_number(phonenumbers.parse(v, region)))
        except phonenumbers.NumberParseException:
            return False

    def digits_valid_somewhere(v: str) -> bool:
        return any(valid(v, r) for r in ("US", "GB", "AU", "DE", "IT"))

    def record() -> str:
        return _until(
            rng,
            lambda: rng.choice(["0", "1", "2"]) + _fill(rng, "d" * rng.choice([9, 10])),
            digits_valid_somewhere,
        )

    def phone(region: str) -> str:
        return _until(
            rng,
            lambda: _fill(rng, _NATIONAL[region]),
            lambda v: valid(v, region),
        )

    out: list[Sample] = []
    for i in range(n):
        if i % 2 == 0:
            out.append(Sample(rng.choice(_RECORDS).format(rec=record()), (), "record"))
            continue
        region = rng.choice(sorted(_NATIONAL))
        tpl = rng.choice(_PHONE_TEMPLATES)
        value = phone(region)
        text = tpl.format(phone=value, rec=record())
        start = text.index(value)
        out.append(Sample(text, ((start, start + len(value), "PHONE_NUMBER"),), region))
    return out
