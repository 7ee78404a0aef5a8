"""Near-duplicate prompts: MinHash signatures of word 5-shingles, LSH banding, groups by connected components.

Numpy rather than the ``datasketch`` package: datasketch hashes every shingle and inserts every signature in Python
(about 90 us per prompt here, ~6 s for 62,500 prompts, longer than the rest of the export); here word hashes are
combined into shingle hashes and all permutations are applied with array operations, ~10x faster. Signatures are
kept as uint16 (the top bits of each 32-bit minimum): 256 bytes per prompt, so a million prompts fit in 256 MB, and
a false match of two different minima (1 in 65,536) barely moves a Jaccard estimate.
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SHINGLE_WORDS = 5
NUM_PERM = 128
_BLOCK = 4096  # shingles hashed at once: NUM_PERM x _BLOCK uint32 = 2 MB
# ASCII punctuation -> space, so "cat," and "cat" are one word (bytes.translate is ~10x faster than a regex)
_PUNCTUATION = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
                dtype=np.uint64)  # fmt: skip
_rng = np.random.default_rng(20240521)
_PERM_A = _rng.integers(0, 2**32, size=NUM_PERM, dtype=np.uint32) | np.uint32(1)
_PERM_B = _rng.integers(0, 2**32, size=NUM_PERM, dtype=np.uint32)


def lsh_bands(
    threshold: float, num_perm: int = NUM_PERM, false_positive_weight: float = 0.1, false_negative_weight: float = 0.9
) -> tuple[int, int]:
    """(bands, rows per band) minimising the weighted false positive and false negative areas around ``threshold``,
    as datasketch's MinHashLSH chooses them (a pair of Jaccard s shares a band with probability 1 - (1 - s^r)^b).

    A missed near duplicate can leak into the test split while a false candidate only costs a signature
    comparison, so misses weigh 9x more: (14, 9) at 0.8, which catches 87% of pairs at J = 0.8 and 99.9% at 0.9
    (datasketch's equal weights, (9, 13), catch 40% and 93%)."""
    below, above = np.linspace(0.0, threshold, 201), np.linspace(threshold, 1.0, 201)
    best, best_cost = (1, num_perm), np.inf
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            false_positive = np.trapezoid(1.0 - (1.0 - below**r) ** b, below)
            false_negative = np.trapezoid((1.0 - above**r) ** b, above)
            cost = false_positive_weight * false_positive + false_negative_weight * false_negative
            if cost < best_cost:
                best, best_cost = (b, r), cost
    return best


def shingle_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash of every word 5-shingle, offset of each text's first shingle). Lower-cased words; a text with
    fewer than 5 words is one shingle of all its words (an empty text hashes to 0)."""
    words: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    crc32 = zlib.crc32
    for i, text in enumerate(texts):
        split = text.lower().encode().translate(_PUNCTUATION).split()
        words.extend(map(crc32, split))
        lengths[i] = len(split)
    n = len(words)
    word = np.zeros(n + SHINGLE_WORDS, dtype=np.uint64)
    word[:n] = np.fromiter(words, dtype=np.uint64, count=n)
    ends = np.cumsum(lengths)
    # the shingle starting at every word position (contiguous slices: no fancy indexing) ...
    rolling = np.zeros(n, dtype=np.uint64)
    for j in range(SHINGLE_WORDS):
        rolling += (word[j : n + j] + np.uint64(j + 1)) * _MIX[j]
    # ... kept where it ends inside its text
    valid = np.ones(n, dtype=bool)
    for k in range(1, SHINGLE_WORDS):
        last = ends - k
        valid[last[(last >= ends - lengths) & (last >= 0)]] = False
    per_text = np.maximum(lengths - (SHINGLE_WORDS - 1), 0)
    shingles = rolling[valid]
    short = np.flatnonzero(lengths < SHINGLE_WORDS)
    if short.size:  # one shingle of all its words, slotted in at the text's place
        at = np.concatenate([[0], np.cumsum(per_text)])[short]
        ranges = zip(ends[short].tolist(), lengths[short].tolist(), strict=True)
        shingles = np.insert(shingles, at, [_short_hash(words[end - m : end]) for end, m in ranges])
        per_text[short] = 1
    offsets = np.concatenate([[0], np.cumsum(per_text)[:-1]]) if len(texts) else np.zeros(0, dtype=np.int64)
    return shingles, offsets.astype(np.int64)


def _short_hash(words: list[int]) -> int:
    """The rolling hash above for a text of fewer than 5 words (Python ints, wrapped like uint64)."""
    return sum((word + j + 1) * int(_MIX[j]) for j, word in enumerate(words)) % (1 << 64)


def signatures(texts: Sequence[str]) -> np.ndarray:
    """MinHash signatures, shape (len(texts), NUM_PERM), uint16: per permutation ``(a * x + b) mod 2^32`` of each
    shingle's 32-bit hash (odd ``a``: a bijection), the minimum over the text's shingles, its top 16 bits."""
    shingles, offsets = shingle_hashes(texts)
    out = np.empty((len(texts), NUM_PERM), dtype=np.uint16)
    if not len(texts):
        return out
    folded = (shingles ^ (shingles >> np.uint64(32))).astype(np.uint32)
    bounds = np.append(offsets, len(shingles))
    work = np.empty((NUM_PERM, _BLOCK), dtype=np.uint32)
    first = 0
    while first < len(texts):  # blocks of whole texts, ~_BLOCK shingles: the work array stays in cache
        last = max(int(np.searchsorted(bounds, bounds[first] + _BLOCK, side="right")) - 1, first + 1)
        lo, hi = bounds[first], bounds[last]
        block = work[:, : hi - lo] if hi - lo <= _BLOCK else np.empty((NUM_PERM, hi - lo), dtype=np.uint32)
        np.multiply(_PERM_A[:, None], folded[None, lo:hi], out=block)
        block += _PERM_B[:, None]
        out[first:last] = (np.minimum.reduceat(block, bounds[first:last] - lo, axis=1) >> np.uint32(16)).T
        first = last
    return out


def lsh_candidates(sigs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(a, b)`` that share an LSH band (a != b): the only pairs whose similarity is then checked."""
    n = len(sigs)
    bands, rows = lsh_bands(threshold, sigs.shape[1]) if threshold < 1.0 else (1, sigs.shape[1])
    banded = sigs[:, : bands * rows].reshape(n, bands, rows)
    keys = np.zeros((bands, n), dtype=np.uint64)  # one key per band and text: FNV-style multiply, then xor
    for j in range(rows):
        keys = (keys * np.uint64(0x100000001B3)) ^ banded[:, :, j].T.astype(np.uint64)
    first, second = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for band_keys in keys:
        order = np.argsort(band_keys)
        ordered = band_keys[order]
        equal = ordered[1:] == ordered[:-1]
        if not equal.any():
            continue
        # texts sharing a key (rare), re-sorted by (key, index) so that the pairs do not depend on the sort
        in_run = np.zeros(n, dtype=bool)
        in_run[1:] |= equal
        in_run[:-1] |= equal
        members, member_keys = order[in_run], ordered[in_run]
        by_key = np.lexsort((members, member_keys))
        members, member_keys = members[by_key], member_keys[by_key]
        starts = np.r_[True, member_keys[1:] != member_keys[:-1]]
        run_start = np.maximum.accumulate(np.where(starts, np.arange(len(members)), 0))
        same = np.flatnonzero(~starts[1:])
        # every member of a run against the run's first member and against its neighbour
        first += [members[run_start[same + 1]], members[same]]
        second += [members[same + 1], members[same + 1]]
    a, b = np.concatenate(first), np.concatenate(second)
    return a[a != b], b[a != b]


def near_duplicate_groups(sigs: np.ndarray, threshold: float) -> np.ndarray:
    """A group label per row: rows whose estimated Jaccard (share of equal signature values) reaches ``threshold``,
    found through LSH band collisions, share a label, and so do their chains (connected components)."""
    n = len(sigs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    a, b = lsh_candidates(sigs, threshold)
    similar = (sigs[a] == sigs[b]).mean(axis=1) >= threshold - 1e-9 if len(a) else np.zeros(0, dtype=bool)
    graph = coo_matrix((np.ones(int(similar.sum())), (a[similar], b[similar])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)
