"""Kemeny-Young consensus order of one prompt's responses from the pairwise preferences of its labelers.

Pure arrays, no ORM. ``votes[i, j]`` counts the labelers who ranked both i and j and put i strictly first, plus
1/2 for every labeler who ranked them equal (a labeler's tie costs 1/2 whichever way the consensus orders the pair,
so counting it as half or as nothing leaves the optimal orders unchanged). A pair only counts where a labeler ranked
both responses, so rankings of different subsets combine without comparing midranks across subsets.
"""

from __future__ import annotations

import numpy as np

KEMENY_EXACT_MAX = 8  # responses per prompt up to which the order is exactly Kemeny-optimal (DP over 2^n subsets)


def kemeny_order(votes: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the responses, consensus first.

    Up to ``KEMENY_EXACT_MAX`` responses: among the orders with the fewest disagreements with the labelers (Kemeny
    cost: sum over ordered pairs i before j of ``votes[j, i]``), the one closest in Kendall distance to the order by
    ``score`` (lower = better; the mean midrank), by dynamic programming over subsets, O(2^n n^2). Above that: the
    order by ``score``, locally Kemenized (Dwork et al. 2001): no two adjacent responses against a strict majority
    of the labelers who compared them. Remaining ties go to the lower index.
    """
    n = len(score)
    if n <= 1:
        return np.arange(n)
    doubled = np.rint(2.0 * np.asarray(votes, dtype=np.float64)).astype(np.int64)
    if n > KEMENY_EXACT_MAX:
        return _local_kemenization(doubled, score)
    worse = (np.round(score[:, None], 9) > np.round(score[None, :], 9)).astype(np.int64)
    # cost of placing i before j: labelers' votes for j over i first, then the score order as a tie-break
    cost = doubled.T * np.int64(n * n) + worse
    np.fill_diagonal(cost, 0)
    full = (1 << n) - 1
    members = (np.arange(full + 1)[:, None] >> np.arange(n)[None, :]) & 1
    after = members @ cost  # after[S, v]: cost of the pairs (u in S, v) when v follows the prefix S
    best = np.full(full + 1, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.zeros(full + 1, dtype=np.int64)
    best[0] = 0
    for subset in range(full):
        for v in range(n):
            if not subset >> v & 1:
                grown = subset | 1 << v
                candidate = best[subset] + after[subset, v]
                if candidate < best[grown]:
                    best[grown], last[grown] = candidate, v
    order, subset = [], full
    while subset:
        order.append(int(last[subset]))
        subset &= ~(1 << order[-1])
    return np.array(order[::-1], dtype=np.int64)


def _local_kemenization(doubled: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Insert the responses in score order, each moving up past those a strict majority ranked below it."""
    order: list[int] = []
    for v in np.lexsort((np.arange(len(score)), np.round(score, 9))):
        place = len(order)
        while place and doubled[v, order[place - 1]] > doubled[order[place - 1], v]:
            place -= 1
        order.insert(place, int(v))
    return np.array(order, dtype=np.int64)


def tie_levels(order: np.ndarray, votes: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Dense consensus level (1 = best) of each position of ``order``: consecutive responses share a level while
    every pair among them has no majority either way (equal votes, or never compared) and an equal score. Any
    reordering within a level then has the same Kemeny cost and score tie-break, so every strict order the levels
    allow is as good as ``order``."""
    votes = np.asarray(votes, dtype=np.float64)
    rounded = np.round(score, 9)
    levels = np.empty(len(order), dtype=np.int64)
    block: list[int] = []
    level = 0
    for position, v in enumerate(order):
        if not block or not all(votes[v, u] == votes[u, v] and rounded[v] == rounded[u] for u in block):
            block, level = [], level + 1
        block.append(v)
        levels[position] = level
    return levels
