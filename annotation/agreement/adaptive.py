"""Adaptive overlap: does a prompt need another labeler? Pure Python on the current rankings of one prompt.

Written by hand: the rule is ours (no library decides when to stop collecting labels). A prompt is settled when
its labelers agree pair by pair (mean pairwise agreement over labeler pairs, ties left out, at least
`min_agreement`) and its top choice is decided (one response ranked first, alone, by a strict majority). Otherwise
it goes to one more labeler, up to the project's maximum overlap. bench/adaptive_overlap.py measures the rule.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations


def pairwise_agreement(a: dict[int, int], b: dict[int, int]) -> tuple[int, int]:
    """(same, compared): response pairs both rankings order strictly, and how many of them they order alike."""
    same = compared = 0
    for x, y in combinations(sorted(set(a) & set(b)), 2):
        da, db = a[x] - a[y], b[x] - b[y]
        if da and db:
            compared += 1
            same += (da < 0) == (db < 0)
    return same, compared


def mean_pairwise_agreement(rankings: list[dict[int, int]]) -> float | None:
    same = compared = 0
    for a, b in combinations(rankings, 2):
        s, c = pairwise_agreement(a, b)
        same, compared = same + s, compared + c
    return same / compared if compared else None


def top_choice(rankings: list[dict[int, int]]) -> int | None:
    """The response a strict majority of labelers ranked first and alone, or None when undecided."""
    firsts = Counter()
    for ranks in rankings:
        best = [rid for rid, rank in ranks.items() if rank == min(ranks.values())] if ranks else []
        if len(best) == 1:
            firsts[best[0]] += 1
    if not firsts:
        return None
    rid, votes = firsts.most_common(1)[0]
    return rid if votes * 2 > len(rankings) else None


def needs_more_labels(rankings: list[dict[int, int]], *, min_agreement: float) -> tuple[bool, str]:
    """(whether to ask one more labeler, why) for a prompt whose labelers gave these rankings."""
    if len(rankings) < 2:
        return True, "fewer than two rankings"
    agreement = mean_pairwise_agreement(rankings)
    if agreement is None:
        return True, "no comparable pairs (all tied)"
    if agreement < min_agreement:
        return True, f"pairwise agreement {agreement:.2f} < {min_agreement:.2f}"
    if top_choice(rankings) is None:
        return True, "top choice undecided"
    return False, f"settled: pairwise agreement {agreement:.2f}, top choice decided"
