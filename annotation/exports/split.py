"""Train/test split by prompt: deterministic, and near-duplicate prompts always on the same side.

Each prompt's side comes from a seeded hash of its group's representative (the member whose unseeded text hash is
smallest, so adding prompts elsewhere never moves a group): ``hash(seed, text) / 2^64 < test_ratio`` -> test.
Groups join prompts whose word 5-shingle Jaccard (MinHash estimate) reaches the threshold; exact duplicates always
share a signature, so they always share a side.

Small projects: a hash threshold can hold out nothing (the demo's 27 prompts at 10%; any 27 prompts 6% of the
time). When ``test_ratio > 0`` the split therefore holds out at least ``min_test_groups`` groups:
min(MIN_TEST_GROUPS, ceil(test_ratio * groups)), never every group. The missing ones are the groups with the
smallest seeded hashes still on the train side, i.e. the next ones the threshold would take: the same order, so
the result is still deterministic. At 10% the threshold alone falls short of 3 for 1% of 80-group projects and
0.2% of 100-group ones, so a large project's split is the pure hash split, stable as prompts are added; a small
project's topped-up groups can go back to train when new prompts reach the threshold.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from annotation.exports.dedup import near_duplicate_groups, signatures

TRAIN, TEST = "train", "test"
MIN_TEST_GROUPS = 3  # a split with test_ratio > 0 holds out at least min(3, ceil(ratio * groups)) groups


def min_test_groups(n_groups: int, test_ratio: float) -> int:
    """Groups a split holds out at least: min(MIN_TEST_GROUPS, ceil(ratio * groups)), 0 for ratio 0, and never
    every group (one is left for training)."""
    if test_ratio <= 0 or n_groups < 2:
        return 0
    return min(MIN_TEST_GROUPS, math.ceil(test_ratio * n_groups - 1e-9), n_groups - 1)


def text_hash(text: str, seed: int | None = None) -> int:
    """64-bit blake2b of the text (salted with the seed when given)."""
    salt = b"" if seed is None else f"{seed}\x00".encode()
    return int.from_bytes(hashlib.blake2b(salt + text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Split:
    """Sides of the prompts that were added: ``ids`` sorted, ``is_test`` aligned, ``group`` per prompt."""

    ids: np.ndarray
    is_test: np.ndarray
    group: np.ndarray

    def side(self, prompt_id: int) -> str:
        at = int(np.searchsorted(self.ids, prompt_id))
        if at == len(self.ids) or self.ids[at] != prompt_id:
            raise KeyError(prompt_id)
        return TEST if self.is_test[at] else TRAIN

    def sides(self, prompt_ids: Sequence[int]) -> dict[int, str]:
        at = np.searchsorted(self.ids, np.asarray(prompt_ids, dtype=np.int64))
        return {pid: TEST if self.is_test[i] else TRAIN for pid, i in zip(prompt_ids, at.tolist(), strict=True)}

    @property
    def n_groups_merged(self) -> int:
        """Groups of two or more prompts (near or exact duplicates)."""
        _, counts = np.unique(self.group, return_counts=True)
        return int((counts > 1).sum())

    @property
    def n_prompts_merged(self) -> int:
        _, inverse, counts = np.unique(self.group, return_inverse=True, return_counts=True)
        return int((counts[inverse] > 1).sum())


class PromptSplitter:
    """Feed (id, text) in chunks with ``add``; ``finish`` groups near duplicates and assigns sides.

    Holds per prompt its id, two 64-bit hashes and a 256-byte signature, never the texts."""

    def __init__(self, *, test_ratio: float, seed: int = 0, threshold: float = 0.8) -> None:
        self.test_ratio, self.seed, self.threshold = test_ratio, seed, threshold
        self._ids: list[np.ndarray] = []
        self._key: list[np.ndarray] = []
        self._salted: list[np.ndarray] = []
        self._sigs: list[np.ndarray] = []

    def add(self, prompt_ids: Sequence[int], texts: Sequence[str]) -> None:
        self._ids.append(np.asarray(prompt_ids, dtype=np.int64))
        self._key.append(np.array([text_hash(t) for t in texts], dtype=np.uint64))
        self._salted.append(np.array([text_hash(t, self.seed) for t in texts], dtype=np.uint64))
        self._sigs.append(signatures(texts))

    def add_all(self, rows: Iterable[tuple[int, str]], chunk: int = 5000) -> None:
        ids: list[int] = []
        texts: list[str] = []
        for prompt_id, text in rows:
            ids.append(prompt_id)
            texts.append(text)
            if len(ids) >= chunk:
                self.add(ids, texts)
                ids, texts = [], []
        if ids:
            self.add(ids, texts)

    def finish(self) -> Split:
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        key = np.concatenate(self._key) if self._key else np.zeros(0, dtype=np.uint64)
        salted = np.concatenate(self._salted) if self._salted else np.zeros(0, dtype=np.uint64)
        sigs = np.concatenate(self._sigs) if self._sigs else np.zeros((0, 1), dtype=np.uint16)
        self._ids, self._key, self._salted, self._sigs = [], [], [], []
        group = near_duplicate_groups(sigs, self.threshold)
        # representative of each group: the member with the smallest unseeded hash (ties: smallest id)
        order = np.lexsort((ids, key, group))
        first = np.r_[True, group[order][1:] != group[order][:-1]] if len(order) else np.zeros(0, dtype=bool)
        rep_salted = np.zeros(int(group.max()) + 1 if len(group) else 0, dtype=np.uint64)
        rep_salted[group[order][first]] = salted[order][first]
        group_test = rep_salted.astype(np.float64) / 2.0**64 < self.test_ratio
        missing = min_test_groups(len(rep_salted), self.test_ratio) - int(group_test.sum())
        if missing > 0:  # small project: hold out the next groups by seeded hash (see the module docstring)
            train_groups = np.flatnonzero(~group_test)
            group_test[train_groups[np.argsort(rep_salted[train_groups], kind="stable")[:missing]]] = True
        is_test = group_test[group]
        by_id = np.argsort(ids, kind="stable")
        return Split(ids=ids[by_id], is_test=is_test[by_id], group=group[by_id])
