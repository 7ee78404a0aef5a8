"""A labeler's feedback: agreement with the others' consensus on settled prompts, results on reference (gold)
prompts, and the guideline passage that bears on each disagreement. Pure Python on plain dicts; the selector in
annotation/selectors_feedback.py gathers the rankings.

Written by hand because it is small and specific: the consensus of the *other* labelers of one prompt (mean rank,
as the leave-one-out figures on the agreement page use), compared pair by pair with one labeler's ranking.
Passage retrieval uses scikit-learn's TF-IDF over character 4-5-grams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations

LETTERS = "ABCDEFGHIJ"
# A section is the text under a markdown heading (levels 1-3), with the heading.
# Cosine similarity below which no section is offered (stop words alone reach about 0.02; a shared topic word
# such as "poisons" or "python" 0.1-0.3).
MIN_SIMILARITY = 0.05
HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass
class Disagreement:
    prompt_id: int
    prompt_text: str
    source: str  # "consensus" (the other labelers) or "reference" (a gold ranking)
    agreement: float | None  # share of comparable pairs ordered as the others/reference did
    my_order: str  # "B > A = C" in the letters this labeler saw
    their_order: str
    flipped: list[str] = field(default_factory=list)  # "you put B above C; the others put C above B"
    passage_title: str = ""
    passage_text: str = ""
    passage_reason: str = ""  # "named by the manager" or "closest section by wording"


def order_string(ranks: dict[int, float], letters: dict[int, str]) -> str:
    """{response: rank} as 'B > A = C' (lower rank is better; equal ranks tie)."""
    groups: dict[float, list[str]] = {}
    for rid, rank in ranks.items():
        if rid in letters:
            groups.setdefault(rank, []).append(letters[rid])
    return " > ".join(" = ".join(sorted(group)) for _, group in sorted(groups.items()))


def consensus_of(rankings: list[dict[int, int]]) -> dict[int, float]:
    """Mean rank of each response over the given rankings (responses any of them ranked)."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for ranks in rankings:
        for rid, rank in ranks.items():
            sums[rid] = sums.get(rid, 0.0) + rank
            counts[rid] = counts.get(rid, 0) + 1
    return {rid: sums[rid] / counts[rid] for rid in sums}


def pair_agreement(mine: dict[int, float], theirs: dict[int, float], letters: dict[int, str], *, who: str):
    """(same, compared, flipped): over the response pairs both sides order strictly, how many are ordered the same
    way, how many there are, and a sentence for each pair ordered the other way."""
    same = total = 0
    flipped = []
    for a, b in combinations(sorted(set(mine) & set(theirs), key=lambda r: letters.get(r, "?")), 2):
        d_mine, d_theirs = mine[a] - mine[b], theirs[a] - theirs[b]
        if d_mine == 0 or d_theirs == 0:
            continue
        total += 1
        if (d_mine < 0) == (d_theirs < 0):
            same += 1
        else:
            better, worse = (a, b) if d_mine < 0 else (b, a)
            flipped.append(
                f"You put {letters.get(better, '?')} above {letters.get(worse, '?')}; "
                f"{who} put {letters.get(worse, '?')} above {letters.get(better, '?')}."
            )
    return same, total, flipped


def guideline_sections(markdown: str) -> list[tuple[str, str]]:
    """(title, text) for each section under a level 1-3 heading; the text before the first heading is 'Guidelines'."""
    return [(title, body) for title, body, _ in _sections(markdown)]


def _sections(markdown: str) -> list[tuple[str, str, int]]:
    marks = list(HEADING.finditer(markdown or ""))
    sections = []
    lead = (markdown or "")[: marks[0].start() if marks else None].strip()
    if lead:
        sections.append(("Guidelines", lead, 1))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(markdown)
        body = markdown[mark.start() : end].strip()
        sections.append((mark.group(2).strip(), body, len(mark.group(1))))
    return sections


def _is_intro(title: str, body: str) -> bool:
    first = body.lstrip().splitlines()[0] if body.strip() else ""
    return title == "Guidelines" and not first.startswith("#") or bool(re.match(r"^#\s", first))


def _norm(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def passage_for(sections: list[tuple[str, str]], *, named: str = "", text: str = "") -> tuple[str, str, str] | None:
    """The guideline section that bears on a disagreement: the one the manager named for the prompt (metadata
    `guideline_section`, a heading's title or its slug), else the section closest in wording to the prompt and the
    responses in question (TF-IDF cosine), else None."""
    if not sections:
        return None
    if named:
        for title, body in sections:
            if _norm(title) == _norm(named):
                return title, body, "named for this prompt by the project's managers"
    if not text.strip():
        return None
    # The text under a level-1 heading (or before any) is the introduction: it applies to everything and decides
    # nothing in particular, so wording is matched against the subsections when there are any.
    subsections = [(t, b) for t, b in sections if not _is_intro(t, b)]
    sections = subsections or sections
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    try:
        # Character n-grams within words: "capital" finds "capitals", "poison" finds "poisons" without a stemmer.
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5), sublinear_tf=True)
        matrix = vectorizer.fit_transform([body for _, body in sections] + [text])
    except ValueError:  # nothing but stop words
        return None
    scores = cosine_similarity(matrix[-1], matrix[:-1]).ravel()
    best = int(scores.argmax())
    if scores[best] < MIN_SIMILARITY:  # shares only common short words: no section bears on it
        return None
    title, body = sections[best]
    return title, body, "the section closest in wording to this prompt and its responses"
