"""The plain data an export reads: one prompt with its responses and the rankings that survived the filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class RankingData:
    """One labeler's current ranking of a prompt: ``ranks`` maps response id -> rank (1 = best, equal = tie).

    ``raw`` carries the extra fields the raw export writes (labeler name, version, created_at, ...). ``strength``
    is a pairwise judgment's strength (1 = strongest .. 4); ``ratings`` the per-response form of each response
    ({response id: {field key: value}}) and ``scores`` its likert score ({response id: score})."""

    id: int
    labeler: int
    ranks: dict[int, int]
    flags: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None
    strength: int | None = None
    scores: dict[int, float] | None = None
    ratings: dict[int, dict[str, Any]] | None = None


@dataclass(slots=True)
class PromptData:
    """A prompt with its responses (id -> text) and rankings. ``messages`` is set for chat prompts."""

    id: int
    text: str
    messages: list[dict[str, str]] | None
    category: str
    responses: dict[int, str]
    rankings: list[RankingData] = field(default_factory=list)
    models: dict[int, str] | None = None  # response id -> model name; raw export only (managers)


@dataclass
class Chunk:
    """A chunk of prompts with their rankings in columns (what the database hands over without per-row objects).

    Rankings are numbered 0..n-1 in (prompt, ranking id) order; ``ranking_prompt`` indexes ``prompts``. Entries
    (one per ranked response) point at their ranking by that number. ``ranking_strength`` (NaN: none),
    ``entry_score`` (NaN: none) and ``entry_values`` (the form's values, None: none) are loaded only when the export
    reads them."""

    prompts: list[PromptData]
    ranking_id: np.ndarray
    ranking_prompt: np.ndarray
    ranking_labeler: np.ndarray
    ranking_flags: list[list[str]]
    entry_ranking: np.ndarray
    entry_response: np.ndarray
    entry_rank: np.ndarray
    ranking_raw: list[dict[str, Any] | None] | None = None
    ranking_strength: np.ndarray | None = None
    entry_score: np.ndarray | None = None
    entry_values: list[dict[str, Any] | None] | None = None

    @property
    def n_rankings(self) -> int:
        return len(self.ranking_id)

    def strengths(self) -> np.ndarray:
        if self.ranking_strength is not None:
            return self.ranking_strength
        return np.full(self.n_rankings, np.nan)

    def scores(self) -> np.ndarray:
        return self.entry_score if self.entry_score is not None else np.full(len(self.entry_ranking), np.nan)

    def with_score_ranks(self) -> tuple[Chunk, int]:
        """(this chunk with each ranking's ranks replaced by the order of its scores: the highest score ranks 1,
        equal scores tie; the number of rankings left out because fewer than two of their responses have a score).
        Responses without a score leave their ranking."""
        score = self.scores()
        scored = np.isfinite(score)
        per_ranking = np.bincount(self.entry_ranking[scored], minlength=self.n_rankings)
        keep_ranking = per_ranking >= 2
        keep = scored & keep_ranking[self.entry_ranking]
        number = np.cumsum(keep_ranking) - 1
        entry_ranking, score = number[self.entry_ranking[keep]], score[keep]
        order = np.lexsort((-score, entry_ranking))
        group, value = entry_ranking[order], score[order]
        new_group = np.r_[True, group[1:] != group[:-1]] if len(order) else np.zeros(0, dtype=bool)
        new_value = new_group | np.r_[True, value[1:] != value[:-1]] if len(order) else new_group
        distinct = np.cumsum(new_value)
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
        rank = np.empty(len(order), dtype=np.float64)
        rank[order] = distinct - distinct[group_start] + 1
        kept = np.flatnonzero(keep_ranking)
        values = self.entry_values
        chunk = Chunk(
            prompts=self.prompts,
            ranking_id=self.ranking_id[kept], ranking_prompt=self.ranking_prompt[kept],
            ranking_labeler=self.ranking_labeler[kept], ranking_flags=[self.ranking_flags[i] for i in kept.tolist()],
            entry_ranking=entry_ranking, entry_response=self.entry_response[keep], entry_rank=rank,
            ranking_raw=None if self.ranking_raw is None else [self.ranking_raw[i] for i in kept.tolist()],
            ranking_strength=None if self.ranking_strength is None else self.ranking_strength[kept],
            entry_score=score,
            entry_values=None if values is None else [values[i] for i in np.flatnonzero(keep).tolist()],
        )  # fmt: skip
        return chunk, int((~keep_ranking).sum())

    @classmethod
    def from_prompts(cls, prompts: Sequence[PromptData]) -> Chunk:
        """The columns of prompts that carry ``RankingData`` objects (tests, small callers)."""
        rankings = [(index, ranking) for index, prompt in enumerate(prompts) for ranking in prompt.rankings]
        sizes = np.array([len(r.ranks) for _, r in rankings], dtype=np.int64)
        return cls(
            prompts=list(prompts),
            ranking_id=np.array([r.id for _, r in rankings], dtype=np.int64),
            ranking_prompt=np.array([i for i, _ in rankings], dtype=np.int64),
            ranking_labeler=np.array([r.labeler for _, r in rankings], dtype=np.int64),
            ranking_flags=[list(r.flags) for _, r in rankings],
            entry_ranking=np.repeat(np.arange(len(rankings)), sizes),
            entry_response=np.array([rid for _, r in rankings for rid in r.ranks], dtype=np.int64),
            entry_rank=np.array([rank for _, r in rankings for rank in r.ranks.values()], dtype=np.float64),
            ranking_raw=[r.raw for _, r in rankings],
            ranking_strength=np.array(
                [np.nan if r.strength is None else r.strength for _, r in rankings], dtype=np.float64
            ),
            entry_score=np.array([_score(r, rid) for _, r in rankings for rid in r.ranks], dtype=np.float64),
            entry_values=[(r.ratings or {}).get(rid) for _, r in rankings for rid in r.ranks],
        )


def _score(ranking: RankingData, response_id: int) -> float:
    value = (ranking.scores or {}).get(response_id)
    return np.nan if value is None else float(value)
