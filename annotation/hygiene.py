"""Prompt hygiene, pure (no Django): what decides whether a prompt may enter a project, and in what form.

Every prompt entering a project (written by a labeler, or imported) goes through `check_prompt`:
- a cap per author (written prompts) or per source (imported lines naming a `source`), InstructGPT's 200 per user;
- personal information (`find_pii`): e-mail addresses, phone numbers, payment card numbers, IBANs, national IDs and
  postal addresses, redacted (`[EMAIL]`, `[PHONE]`, ...) or refused by the project's policy;
- near duplicates of the project's prompts: MinHash of word 5-shingles (`annotation.exports.dedup`, the export's
  split uses the same signatures), estimated Jaccard similarity at or above the threshold;
- contamination: near or exact (normalised) matches of a prompt of one of the project's evaluation sets.
Each refusal carries a code and a sentence saying why. docs/labeling-modes.md, "Prompt writing and hygiene".
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import phonenumbers
import pyap
from stdnum import iban, luhn
from stdnum.br import cpf
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.us import ssn

from annotation.exports import dedup
from annotation.importing import messages_to_text

PII_OFF, PII_REDACT, PII_REFUSE = "off", "redact", "refuse"
PII_POLICIES = (PII_OFF, PII_REDACT, PII_REFUSE)
DEFAULT_CAP = 200  # InstructGPT (Ouyang et al. 2022, section 3.2): "at most 200 prompts per user ID"
# Near-identical only: at the export's 0.8 (which keeps near duplicates on one side of the split rather than refusing
# them) 3 of the 759 multi-turn conversations of HH-RLHF helpful-base's dev file, distinct conversations sharing
# most of their turns, would be refused.
DEFAULT_NEAR_DUP = 0.9

PII_LABELS = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "an IBAN",
    "national_id": "a national ID number",
    "address": "a postal address",
}

# Hand-written on purpose: no maintained library on PyPI finds e-mail addresses in free text offline (validators
# such as email-validator check one given address). This is the WHATWG HTML "valid e-mail address" grammar.
EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# Candidates only: every match below is confirmed by a python-stdnum validator (check digits), so a pattern that
# finds too much costs nothing but the check. Card numbers: 13-19 digits with optional spaces or dashes, a Luhn
# check digit, and an issuer prefix (ISO/IEC 7812 ranges of the networks in use; stdnum has no card module).
CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6011|6[45]|35|62)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
NATIONAL_IDS = (  # (name, candidate pattern, python-stdnum validator)
    ("US SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), ssn.is_valid),
    ("Brazilian CPF", re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b"), cpf.is_valid),
    ("Spanish DNI", re.compile(r"\b\d{8}-?[A-Z]\b"), dni.is_valid),
    ("Italian codice fiscale", re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b"), codicefiscale.is_valid),
    ("French NIR", re.compile(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b"), nir.is_valid),
    ("Indian Aadhaar", re.compile(r"\b[2-9]\d{3} ?\d{4} ?\d{4}\b"), aadhaar.is_valid),
)
ADDRESS_COUNTRIES = ("US", "CA", "GB")  # the countries pyap knows
# Cheap gates in front of the two slow detectors (about 1 ms per prompt for phonenumbers, 3 ms for pyap's three
# countries; an import of 100,000 prompts would spend minutes there): a phone number has at least 7 digits in one
# run (separators allowed), and an address pyap can find starts with a house number before a capitalised word.
PHONE_HINT = re.compile(r"\d(?:[\s().+/-]{0,3}\d){6,}")
ADDRESS_HINT = re.compile(r"\b\d{1,6}[A-Za-z]?,?\s+(?:[NSEW]\.?\s+)?[A-Z][A-Za-z]")


@dataclass(frozen=True)
class PiiMatch:
    kind: str  # a key of PII_LABELS
    start: int
    end: int
    detail: str = ""  # e.g. "US SSN"


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _cards(text: str) -> Iterable[PiiMatch]:
    for m in CARD_RE.finditer(text):
        number = _digits(m.group())
        if CARD_PREFIX.match(number) and luhn.is_valid(number):
            yield PiiMatch("card", m.start(), m.end())


def _phones(text: str, region: str) -> Iterable[PiiMatch]:
    # VALID leniency: the number must be a real, assigned range for its country (libphonenumber's metadata).
    for m in phonenumbers.PhoneNumberMatcher(text, region or None, leniency=phonenumbers.Leniency.VALID):
        yield PiiMatch("phone", m.start, m.end)


def _national_ids(text: str) -> Iterable[PiiMatch]:
    for name, pattern, valid in NATIONAL_IDS:
        for m in pattern.finditer(text):
            if valid(m.group()):
                yield PiiMatch("national_id", m.start(), m.end(), name)


def _addresses(text: str) -> Iterable[PiiMatch]:
    for country in ADDRESS_COUNTRIES:
        for address in pyap.parse(text, country=country):
            start = text.find(address.full_address)
            if start >= 0:
                yield PiiMatch("address", start, start + len(address.full_address), country)


def find_pii(text: str, *, phone_region: str = "US") -> list[PiiMatch]:
    """Personal information in `text`, in order, overlaps resolved in favour of the earlier (then longer) match.
    Every kind but e-mail needs a digit, so text without digits costs one regex."""
    found = [PiiMatch("email", m.start(), m.end()) for m in EMAIL_RE.finditer(text)]
    if any(c.isdigit() for c in text):
        found += _cards(text)
        found += (PiiMatch("iban", m.start(), m.end()) for m in IBAN_RE.finditer(text) if iban.is_valid(m.group()))
        found += _national_ids(text)
        if PHONE_HINT.search(text):
            found += _phones(text, phone_region)
        if ADDRESS_HINT.search(text):
            found += _addresses(text)
    kept: list[PiiMatch] = []
    for match in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if not kept or match.start >= kept[-1].end:
            kept.append(match)
    return kept


def redact(text: str, matches: list[PiiMatch]) -> str:
    """`text` with every match replaced by its kind in capitals: "[EMAIL]", "[PHONE]", "[NATIONAL_ID]"."""
    out, at = [], 0
    for match in matches:
        out += [text[at : match.start], f"[{match.kind.upper()}]"]
        at = match.end
    return "".join([*out, text[at:]])


def normalised(text: str) -> str:
    """Exact-match key for contamination: NFKC, case-folded, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


_MIXES = [int(m) for m in dedup._MIX]
_LONG_TEXT_WORDS = 200


def signature(text: str) -> np.ndarray:
    """`dedup.signatures([text])[0]`, computed for one text without its array set-up (about 1 ms a call there, a
    cost paid per line of an import): the same word hashes, shingle hashes and permutations, so signatures made
    either way compare. Long texts go through `dedup.signatures` itself."""
    words = [zlib.crc32(w) for w in text.lower().encode().translate(dedup._PUNCTUATION).split()]
    if len(words) > _LONG_TEXT_WORDS:
        return dedup.signatures([text])[0]
    n = dedup.SHINGLE_WORDS
    if len(words) < n:
        hashes = [dedup._short_hash(words)]
    else:
        hashes = [
            sum((words[i + j] + j + 1) * _MIXES[j] for j in range(n)) % (1 << 64) for i in range(len(words) - n + 1)
        ]
    shingles = np.array(hashes, dtype=np.uint64)
    folded = (shingles ^ (shingles >> np.uint64(32))).astype(np.uint32)
    permuted = dedup._PERM_A[:, None] * folded[None, :] + dedup._PERM_B[:, None]  # uint32: wraps like dedup's
    return (permuted.min(axis=1) >> np.uint32(16)).astype(np.uint16)


@functools.cache
def _bands(threshold: float) -> tuple[int, int]:
    return dedup.lsh_bands(threshold)  # a search over every (bands, rows): once per threshold


class NearDupIndex:
    """Incremental MinHash LSH over `dedup.signatures` (the export's): `add` a prompt, `query` the most similar one
    at or above `threshold`. Band keys are the bytes of each band of the signature, as datasketch's MinHashLSH
    keys them, with the export's band choice (`dedup.lsh_bands`). Memory: 256 bytes of signature per prompt."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.bands, self.rows = _bands(threshold) if 0 < threshold < 1 else (1, dedup.NUM_PERM)
        self.keys: list[object] = []
        self.sigs: list[np.ndarray] = []
        self.buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]

    def __len__(self) -> int:
        return len(self.keys)

    def _band_keys(self, sig: np.ndarray) -> list[bytes]:
        return [sig[b * self.rows : (b + 1) * self.rows].tobytes() for b in range(self.bands)]

    def add_many(self, items: Iterable[tuple[object, str]], batch: int = 5000) -> None:
        chunk: list[tuple[object, str]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= batch:
                self._add_signed(chunk, dedup.signatures([t for _, t in chunk]))
                chunk = []
        if chunk:
            self._add_signed(chunk, dedup.signatures([t for _, t in chunk]))

    def add(self, key: object, text: str, sig: np.ndarray | None = None) -> None:
        self._add_signed([(key, text)], (signature(text) if sig is None else sig)[None, :])

    def _add_signed(self, items: list[tuple[object, str]], sigs: np.ndarray) -> None:
        for (key, _), sig in zip(items, sigs, strict=True):
            i = len(self.keys)
            self.keys.append(key)
            self.sigs.append(sig)
            for bucket, band in zip(self.buckets, self._band_keys(sig), strict=True):
                bucket.setdefault(band, []).append(i)

    def query(self, text: str, sig: np.ndarray | None = None) -> tuple[object, float] | None:
        """(key, estimated Jaccard) of the most similar indexed prompt at or above the threshold, else None."""
        sig = signature(text) if sig is None else sig
        candidates = {i for bucket, band in zip(self.buckets, self._band_keys(sig), strict=True)
                      for i in bucket.get(band, ())}  # fmt: skip
        best = None
        for i in sorted(candidates):
            similarity = float((self.sigs[i] == sig).mean())
            if similarity >= self.threshold - 1e-9 and (best is None or similarity > best[1]):
                best = (self.keys[i], similarity)
        return best


@dataclass
class EvalIndex:
    """The prompts of a project's evaluation sets: exact normalised texts and a MinHash index, keyed by
    (set name, 1-based item number)."""

    threshold: float
    exact: dict[str, tuple[str, int]] = field(default_factory=dict)
    near: NearDupIndex | None = None

    def add_set(self, name: str, prompts: Iterable[str]) -> None:
        if self.near is None:
            self.near = NearDupIndex(self.threshold if 0 < self.threshold < 1 else 1.0)
        items = [((name, i), text) for i, text in enumerate(prompts, start=1)]
        for key, text in items:
            self.exact.setdefault(normalised(text), key)
        self.near.add_many(items)

    def query(self, text: str, sig: np.ndarray | None = None) -> tuple[tuple[str, int], float] | None:
        key = self.exact.get(normalised(text))
        if key is not None:
            return key, 1.0
        return self.near.query(text, sig) if self.near is not None and 0 < self.threshold < 1 else None

    def matches(
        self, items: Iterable[tuple[object, str]], batch: int = 5000
    ) -> Iterable[tuple[object, tuple[str, int], float]]:
        """(key, (set name, item), similarity) of each item matching an evaluation prompt: texts that were in the
        project before the set came. Signatures are computed a batch at a time (`dedup.signatures`)."""
        iterator = iter(items)
        while chunk := list(itertools.islice(iterator, batch)):
            sigs = dedup.signatures([text for _, text in chunk])
            for (key, text), sig in zip(chunk, sigs, strict=True):
                found = self.query(text, sig)
                if found is not None:
                    yield key, found[0], found[1]


@dataclass(frozen=True)
class Policy:
    cap: int = DEFAULT_CAP  # prompts per author / source in the project; 0: no cap
    pii: str = PII_REDACT
    near_dup_threshold: float = DEFAULT_NEAR_DUP  # 0: no near-duplicate check
    phone_region: str = "US"  # how numbers written without a country code are read


@dataclass(frozen=True)
class Reason:
    code: str  # cap | pii | near_duplicate | contaminated
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class Decision:
    accepted: bool
    text: str  # redacted when the policy says so
    messages: list[dict] | None = None  # chat prompts: the turns, redacted the same way
    reasons: list[Reason] = field(default_factory=list)  # why it was refused
    redacted: list[str] = field(default_factory=list)  # PII kinds replaced in `text` (redact policy)
    signature: np.ndarray | None = None  # of the final text: add it to the project's index once stored

    def explain(self) -> str:
        return " ".join(r.message for r in self.reasons)


def _pii_names(kinds: Iterable[str]) -> str:
    return ", ".join(PII_LABELS[k] for k in dict.fromkeys(kinds))


def check_prompt(
    text: str,
    *,
    policy: Policy,
    messages: list[dict] | None = None,
    author: str = "",
    author_count: int = 0,
    existing: NearDupIndex | None = None,
    evals: EvalIndex | None = None,
) -> Decision:
    """Decide one prompt: every check runs, so a refusal lists all its reasons. `author_count`: the prompts the author
    (or source) already has in the project; `existing`: the project's prompts; `evals`: its evaluation sets."""
    reasons: list[Reason] = []
    if policy.cap and author and author_count >= policy.cap:
        reasons.append(Reason("cap", f"{author} already has {author_count} prompts in this project; the cap is "
                                     f"{policy.cap} per author or source."))  # fmt: skip
    redacted: list[str] = []
    if policy.pii != PII_OFF:
        parts = [m["content"] for m in messages] if messages else [text]
        found = [find_pii(part, phone_region=policy.phone_region) for part in parts]
        kinds = [m.kind for matches in found for m in matches]
        if kinds and policy.pii == PII_REFUSE:
            reasons.append(Reason("pii", f"It contains personal information ({_pii_names(kinds)}); this project "
                                         "refuses such prompts: remove it and try again."))  # fmt: skip
        elif kinds:
            redacted = list(dict.fromkeys(kinds))
            parts = [redact(part, matches) for part, matches in zip(parts, found, strict=True)]
            if messages:
                messages = [{**m, "content": part} for m, part in zip(messages, parts, strict=True)]
                text = messages_to_text(messages)
            else:
                text = parts[0]
    sig = signature(text)
    if existing is not None and 0 < policy.near_dup_threshold <= 1:
        near = existing.query(text, sig)
        if near is not None:
            similarity, threshold = near[1], policy.near_dup_threshold
            message = f"It is a near duplicate of {near[0]} (similarity {similarity:.2f}, threshold {threshold:.2f})."
            reasons.append(Reason("near_duplicate", message))
    if evals is not None:
        hit = evals.query(text, sig)
        if hit is not None:
            (name, item), similarity = hit
            how = "the same text" if similarity == 1.0 else f"similarity {similarity:.2f}"
            reasons.append(Reason("contaminated", f"It matches item {item} of the evaluation set '{name}' ({how}): "
                                  "evaluation prompts must never be trained on."))  # fmt: skip
    return Decision(not reasons, text, messages, reasons, redacted, sig)
