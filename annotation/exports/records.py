"""The plain data an export reads: one prompt with its responses and the rankings that survived the filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class RankingData:
    """One labeler's current ranking of a prompt: ``ranks`` maps response id -> rank (1 = best, equal = tie).

    ``raw`` carries the extra fields the raw export writes (labeler name, version, created_at, ...)."""

    id: int
    labeler: int
    ranks: dict[int, int]
    flags: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None


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
    (one per ranked response) point at their ranking by that number."""

    prompts: list[PromptData]
    ranking_id: np.ndarray
    ranking_prompt: np.ndarray
    ranking_labeler: np.ndarray
    ranking_flags: list[list[str]]
    entry_ranking: np.ndarray
    entry_response: np.ndarray
    entry_rank: np.ndarray
    ranking_raw: list[dict[str, Any] | None] | None = None

    @property
    def n_rankings(self) -> int:
        return len(self.ranking_id)

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
        )
