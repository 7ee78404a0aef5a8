"""Rankings -> preference pairs, by strategy. Rows are appended to a columnar ``Batch`` that the writers format.

- ``all``: one row per labeler and pair of responses with different ranks (InstructGPT trains on these).
- ``majority``: one row per prompt and unordered response pair, in the direction most labelers chose; labelers who
  tied the pair abstain; an even split is dropped.
- ``consensus``: pairs of the prompt's consensus ranking (Kemeny, ``annotation.agreement.consensus_ranking``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from annotation.exports.records import Chunk, PromptData, RankingData


@dataclass
class Counts:
    """What the strategies did: rows written, tied pairs dropped or kept as tie rows, even splits dropped."""

    pairs: int = 0
    ties_dropped: int = 0
    tie_rows: int = 0
    even_splits_dropped: int = 0
    margin_missing: int = 0  # margin score-diff / strength: rows without a score or strength (margin 0)
    margin_clipped: int = 0  # margin score-diff: rows whose scores order the pair the other way (margin 0)

    def add(self, other: Counts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Batch:
    """Rows in columns. ``prompt`` indexes ``prompts``; ``chosen``/``rejected`` are response ids of that prompt.
    ``ranking`` is the ranking id (strategy all), ``votes_for``/``votes_against`` the majority's votes,
    ``n_labelers`` the labelers behind a consensus row."""

    prompts: list[PromptData] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    tie: list[bool] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)
    votes_for: list[int] = field(default_factory=list)
    votes_against: list[int] = field(default_factory=list)
    n_labelers: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.chosen)

    def add_prompt(self, prompt: PromptData) -> int:
        self.prompts.append(prompt)
        return len(self.prompts) - 1


def ranking_pairs(ranks: Mapping[int, float], keep_ties: bool = False) -> list[tuple[int, int, float, bool]]:
    """``(chosen, rejected, rank difference, tie)`` for every two responses of one ranking, best-ranked first.

    Responses are taken in rank order (equal ranks by response id); two responses with the same rank give a tie row
    ``(first, second, 0.0, True)`` when ``keep_ties``, else nothing."""
    ordered = sorted(ranks.items(), key=lambda item: (item[1], item[0]))
    out = []
    for i, (better, better_rank) in enumerate(ordered):
        for worse, worse_rank in ordered[i + 1 :]:
            if worse_rank != better_rank:
                out.append((better, worse, float(worse_rank - better_rank), False))
            elif keep_ties:
                out.append((better, worse, 0.0, True))
    return out


def _append(batch: Batch, index: int, row: tuple[int, int, float, bool], extra: tuple[int, int, int, int]) -> None:
    batch.prompt.append(index)
    batch.chosen.append(row[0])
    batch.rejected.append(row[1])
    batch.margin.append(row[2])
    batch.tie.append(row[3])
    batch.ranking.append(extra[0])
    batch.votes_for.append(extra[1])
    batch.votes_against.append(extra[2])
    batch.n_labelers.append(extra[3])


@dataclass
class Long:
    """Rankings in long format, rows grouped by ranking: ``item`` indexes the chunk's prompts, ``ranking`` numbers
    the rankings 0..n-1 (``ranking_ids`` maps them to ids, ``source`` to the chunk's ranking numbers), then the
    labeler, response id and rank of each row; ``sizes`` counts each ranking's rows; ``entry`` is each row's
    entry number in the chunk (its score and form values)."""

    item: np.ndarray
    ranking: np.ndarray
    labeler: np.ndarray
    response: np.ndarray
    rank: np.ndarray
    ranking_ids: np.ndarray
    sizes: np.ndarray
    source: np.ndarray
    entry: np.ndarray

    @classmethod
    def from_chunk(cls, chunk: Chunk, keep: np.ndarray) -> Long:
        """The rows of the chunk's rankings where ``keep`` (a mask over rankings), vectorised."""
        chosen = np.flatnonzero(keep)
        number = np.full(chunk.n_rankings, -1, dtype=np.int64)
        number[chosen] = np.arange(len(chosen))
        entry = number[chunk.entry_ranking]
        rows = np.flatnonzero(entry >= 0)
        rows = rows[np.argsort(entry[rows], kind="stable")]
        ranking = entry[rows]
        return cls(
            item=chunk.ranking_prompt[chosen][ranking],
            ranking=ranking,
            labeler=chunk.ranking_labeler[chosen][ranking],
            response=chunk.entry_response[rows],
            rank=chunk.entry_rank[rows].astype(np.float64),
            ranking_ids=chunk.ranking_id[chosen],
            sizes=np.bincount(ranking, minlength=len(chosen)),
            source=chosen,
            entry=rows,
        )

    @classmethod
    def build(cls, items: Sequence[tuple[PromptData, Sequence[RankingData]]]) -> Long:
        """From ``(prompt, rankings)`` items; ``item`` indexes ``items``."""
        prompts = [PromptData(p.id, p.text, p.messages, p.category, p.responses, list(r)) for p, r in items]
        chunk = Chunk.from_prompts(prompts)
        return cls.from_chunk(chunk, np.ones(chunk.n_rankings, dtype=bool))

    def rankings_by_item(self, chunk: Chunk) -> dict[int, list[RankingData]]:
        """The rows back as ``RankingData`` per item (the strategies and formats that work per prompt)."""
        out: dict[int, list[RankingData]] = {}
        starts = (np.cumsum(self.sizes) - self.sizes).tolist()
        response, rank = self.response.tolist(), self.rank.tolist()
        raw = chunk.ranking_raw
        strength = chunk.strengths().tolist()
        for number, (start, size, source) in enumerate(zip(starts, self.sizes.tolist(), self.source.tolist(),
                                                           strict=True)):  # fmt: skip
            item = int(chunk.ranking_prompt[source])
            ranks = {response[i]: int(rank[i]) if rank[i].is_integer() else rank[i] for i in range(start, start + size)}
            ranking = RankingData(int(self.ranking_ids[number]), int(chunk.ranking_labeler[source]), ranks,
                                  chunk.ranking_flags[source], raw[source] if raw else None,
                                  None if strength[source] != strength[source] else int(strength[source]))  # fmt: skip
            out.setdefault(item, []).append(ranking)
        return out


def all_pairs(long: Long, keep_ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strategy ``all``, vectorised: row indices ``(better, worse)`` of every pair of responses within each
    ranking, and whether the pair is a tie; ties left out unless ``keep_ties``. Rows come in ``ranking_pairs`` order:
    by ranking, then by the better response's (rank, id), then the worse one's."""
    first, second = _pairs_within(long.sizes)
    rank, response = long.rank, long.response
    swap = (rank[second] < rank[first]) | ((rank[second] == rank[first]) & (response[second] < response[first]))
    better, worse = np.where(swap, second, first), np.where(swap, first, second)
    tie = rank[better] == rank[worse]
    if not keep_ties:
        better, worse, tie = better[~tie], worse[~tie], tie[~tie]
    order = np.lexsort((response[worse], rank[worse], response[better], rank[better], long.ranking[better]))
    return better[order], worse[order], tie[order]


def _pairs_within(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) within consecutive groups of the given sizes."""
    starts = np.cumsum(sizes) - sizes
    firsts, seconds = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for k in np.unique(sizes).tolist():
        i, j = np.triu_indices(k, 1)
        base = starts[sizes == k][:, None]
        firsts.append((base + i).ravel())
        seconds.append((base + j).ravel())
    return np.concatenate(firsts), np.concatenate(seconds)


def pairs_majority(batch: Batch, prompt: PromptData, rankings: Sequence[RankingData], keep_ties: bool) -> Counts:
    """Strategy ``majority``: per unordered response pair (by response id), the direction most labelers chose.

    ``votes_for``/``votes_against`` count the labelers on each side (those who tied abstain); ``margin`` is the
    mean rank difference among the majority. An even split (e.g. 1-1) is dropped; a pair every labeler tied is a
    tie (dropped, or a tie row with 0 votes when ``keep_ties``)."""
    counts = Counts()
    if not rankings:
        return counts
    index = batch.add_prompt(prompt)
    responses = sorted({rid for ranking in rankings for rid in ranking.ranks})
    n_labelers = len({ranking.labeler for ranking in rankings})
    for a, b in combinations(responses, 2):
        a_better = b_better = 0
        a_diff = b_diff = 0.0
        for ranking in rankings:
            ra, rb = ranking.ranks.get(a), ranking.ranks.get(b)
            if ra is None or rb is None:
                continue
            if ra < rb:
                a_better, a_diff = a_better + 1, a_diff + (rb - ra)
            elif rb < ra:
                b_better, b_diff = b_better + 1, b_diff + (ra - rb)
        if a_better == b_better:
            if a_better:
                counts.even_splits_dropped += 1
            elif keep_ties:
                _append(batch, index, (a, b, 0.0, True), (0, 0, 0, n_labelers))
                counts.pairs += 1
                counts.tie_rows += 1
            else:
                counts.ties_dropped += 1
            continue
        if a_better > b_better:
            row, votes = (a, b, a_diff / a_better, False), (0, a_better, b_better, n_labelers)
        else:
            row, votes = (b, a, b_diff / b_better, False), (0, b_better, a_better, n_labelers)
        _append(batch, index, row, votes)
        counts.pairs += 1
    return counts


def pairs_from_ranks(
    batch: Batch, prompt: PromptData, ranks: Mapping[int, float], n_labelers: int, keep_ties: bool
) -> Counts:
    """Strategy ``consensus``: the pairs of one (consensus) ranking of the prompt."""
    counts = Counts()
    if not ranks:
        return counts
    index = batch.add_prompt(prompt)
    rows = ranking_pairs(ranks, keep_ties)
    k = len(ranks)
    counts.ties_dropped += k * (k - 1) // 2 - len(rows) if not keep_ties else 0
    counts.tie_rows += sum(1 for row in rows if row[3])
    counts.pairs += len(rows)
    for row in rows:
        _append(batch, index, row, (0, 0, 0, n_labelers))
    return counts
