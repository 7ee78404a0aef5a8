"""Adaptive overlap: does a prompt need another labeler? Pure Python on the current rankings of one prompt.

Written by hand: the rule is ours (no library decides when to stop collecting labels). A prompt is settled when
its labelers agree pair by pair (mean pairwise agreement over labeler pairs, ties left out, at least
`min_agreement`) and its top choice is decided (one response ranked first, alone, by at least two more labelers
than any other). Otherwise it goes to one more labeler, up to the project's maximum overlap. The margin of two and
the default threshold 0.6 were chosen on a simulation (bench/adaptive_overlap.py, seed 1; docs/benchmarks.md):
a strict majority (2-1 of three) settled prompts too early, and the top-choice margin is what keeps the consensus
accurate, while a high pairwise threshold mostly spends labels on the order of the worse answers.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from annotation.feedback import pair_agreement


def pairwise_agreement(a: dict[int, int], b: dict[int, int]) -> tuple[int, int]:
    """(same, compared): response pairs both rankings order strictly, and how many of them they order alike."""
    same, compared, _ = pair_agreement(a, b, {}, who="")
    return same, compared


def mean_pairwise_agreement(rankings: list[dict[int, int]]) -> float | None:
    same = compared = 0
    for a, b in combinations(rankings, 2):
        s, c = pairwise_agreement(a, b)
        same, compared = same + s, compared + c
    return same / compared if compared else None


TOP_MARGIN = 2  # first-place votes by which the top choice must lead the runner-up


def top_choice(rankings: list[dict[int, int]]) -> int | None:
    """The response ranked first (alone) by at least TOP_MARGIN more labelers than any other, or None when
    undecided: two labelers must agree, a 2-1 split of three is not enough, 3-1 of four is."""
    firsts = Counter()
    for ranks in rankings:
        best = [rid for rid, rank in ranks.items() if rank == min(ranks.values())] if ranks else []
        if len(best) == 1:
            firsts[best[0]] += 1
    leaders = firsts.most_common(2)
    if not leaders:
        return None
    runner_up = leaders[1][1] if len(leaders) > 1 else 0
    return leaders[0][0] if leaders[0][1] - runner_up >= TOP_MARGIN else None


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
