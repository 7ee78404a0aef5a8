"""The export pipeline, one chunk of prompts at a time: filter rankings -> per-prompt filters -> agreement of what
is kept -> pairs by strategy -> the prompt's split -> sinks. Only the current chunk is ever in memory.

Chunks arrive in columns (``Chunk``): the filters, the agreement sums and strategy ``all`` are array operations;
``majority``, ``consensus`` and ``raw`` turn the kept rows back into per-prompt ``RankingData``.

``pairs_from="scores"`` first replaces each ranking's ranks by the order of its per-response scores, so every
filter and strategy then works on them; dataset ``ratings`` writes one row per response of each kept ranking
(after the same filters) instead of pairs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from annotation import agreement as ag
from annotation.exports.formats import RatingsBatch, raw_line
from annotation.exports.options import UNSAFE_FLAG, ExportOptions
from annotation.exports.pairs import Batch, Counts, Long, all_pairs, pairs_from_ranks, pairs_majority
from annotation.exports.records import Chunk, PromptData, RankingData
from annotation.exports.split import TEST, TRAIN, Split
from annotation.exports.writers import Sink

Item = tuple[PromptData, list[RankingData]]


@dataclass
class SplitCounts:
    prompts: int = 0
    rankings: int = 0
    pairs: int = 0
    ratings: int = 0


@dataclass
class ExportStats:
    """Everything the metadata reports about what was (not) exported."""

    prompts_seen: int = 0
    prompts_without_rankings: int = 0
    prompts_below_min_labelers: int = 0
    prompts_below_min_agreement: int = 0
    rankings_flag_excluded: int = 0
    rankings_without_scores: int = 0
    unsafe_rankings: int = 0
    unsafe_pairs: int = 0
    pairs: Counts = field(default_factory=Counts)
    splits: dict[str, SplitCounts] = field(default_factory=lambda: {TRAIN: SplitCounts(), TEST: SplitCounts()})
    labelers: set[int] = field(default_factory=set)
    agree: float = 0.0
    compared: float = 0.0
    coincidences: dict[tuple[float, float], float] = field(default_factory=lambda: defaultdict(float))

    def agreement(self) -> dict[str, float | None]:
        """Agreement of the exported rankings: pairwise (ties dropped) and Krippendorff's alpha (ordinal)."""
        pairwise = self.agree / self.compared if self.compared else None
        alpha = None
        if self.coincidences:
            domain = np.array(sorted({value for cell in self.coincidences for value in cell}))
            index = {value: i for i, value in enumerate(domain.tolist())}
            o = np.zeros((len(domain), len(domain)))
            for (c, k), amount in self.coincidences.items():
                o[index[c], index[k]] += amount
            value = float(ag.alpha_from_coincidences(o, domain, "ordinal"))
            alpha = value if np.isfinite(value) else None
        return {"pairwise_agreement_ties_dropped": pairwise, "alpha_ordinal": alpha}


ALPHA_TIE_CODING = ag.DEFAULT_TIE_CODING  # named in export_meta.json's agreement: "average" (Kendall's midranks)


def chunk_table(items: Sequence[Item], long: Long | None = None) -> ag.RankTable:
    """The agreement package's table of the items' rankings (prompt, labeler, response, rank)."""
    long = long if long is not None else Long.build(items)
    prompt_ids = np.array([prompt.id for prompt, _ in items], dtype=np.int64)
    return ag.RankTable.from_arrays(prompt_ids[long.item], long.labeler, long.response, long.rank)


def consensus_by_prompt(table: ag.RankTable) -> dict[int, dict[int, int]]:
    """Prompt id -> {response id: consensus rank} (Kemeny, ``annotation.agreement.consensus_ranking``)."""
    consensus = ag.consensus_ranking(table)
    out: dict[int, dict[int, int]] = defaultdict(dict)
    prompt_ids, response_ids = table.prompt_ids, table.response_ids
    for p, r, rank in zip(consensus.prompt.tolist(), consensus.response.tolist(), consensus.rank.tolist(), strict=True):
        out[int(prompt_ids[p])][int(response_ids[r])] = int(rank)
    return out


class Exporter:
    """Feed chunks (``Chunk``, or lists of ``PromptData`` with rankings) in a stable order to ``process``; ``close``
    the sinks at the end. ``sinks`` maps ``train``/``test`` to pair sinks, or ``raw`` to the raw sink; ``unsafe``
    receives rankings flagged unsafe when ``options.unsafe_separate`` (pairs, or raw lines for the raw format)."""

    def __init__(self, options: ExportOptions, split: Split, sinks: dict[str, Sink], unsafe: Sink | None = None):
        self.options, self.split, self.sinks, self.unsafe = options, split, sinks, unsafe
        self.raw = "raw" in sinks
        self.stats = ExportStats()

    def process(self, data: Chunk | Sequence[PromptData]) -> None:
        chunk = data if isinstance(data, Chunk) else Chunk.from_prompts(data)
        self.stats.prompts_seen += len(chunk.prompts)
        if self.options.pairs_from == "scores" and self.options.dataset == "pairs" and not self.raw:
            chunk, unscored = chunk.with_score_ranks()
            self.stats.rankings_without_scores += unscored
        keep, unsafe = self._ranking_masks(chunk)
        prompt_keep = self._prompt_mask(chunk, keep)
        long = Long.from_chunk(chunk, keep & prompt_keep[chunk.ranking_prompt])
        long, prompt_keep = self._agreement(chunk, long, prompt_keep)
        side_of = self._sides(chunk, prompt_keep)
        if self.raw:
            self._write_raw(chunk, long, side_of, self.sinks["raw"])
        elif self.options.dataset == "ratings":
            for side, batch in self._ratings(chunk, long, side_of).items():
                self.sinks[side].write(batch)
                self.stats.splits[side].ratings += len(batch)
        else:
            for side, (batch, counts) in self._pairs(chunk, long, side_of).items():
                self.sinks[side].write(batch)
                self.stats.pairs.add(counts)
                self.stats.splits[side].pairs += counts.pairs
        rankings_per_item = np.bincount(long.item[np.cumsum(long.sizes) - long.sizes], minlength=len(chunk.prompts))
        for item, side in side_of.items():
            self.stats.splits[side].prompts += 1
            self.stats.splits[side].rankings += int(rankings_per_item[item])
        self.stats.labelers.update(np.unique(long.labeler).tolist())
        if unsafe.any() and self.unsafe is not None:
            self._write_unsafe(chunk, Long.from_chunk(chunk, unsafe))

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        if self.unsafe is not None:
            self.unsafe.close()

    # --- filters -------------------------------------------------------------------------------------------------

    def _ranking_masks(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """(kept, unsafe) masks over the chunk's rankings: flags decide (only flagged rankings are looked at)."""
        keep = np.ones(chunk.n_rankings, dtype=bool)
        unsafe = np.zeros(chunk.n_rankings, dtype=bool)
        for index in [i for i, flags in enumerate(chunk.ranking_flags) if flags]:
            flags = chunk.ranking_flags[index]
            if self.options.unsafe_separate and UNSAFE_FLAG in flags:
                keep[index], unsafe[index] = False, True
            elif self.options.excludes(flags):
                keep[index] = False
                self.stats.rankings_flag_excluded += 1
        self.stats.unsafe_rankings += int(unsafe.sum())
        return keep, unsafe

    def _prompt_mask(self, chunk: Chunk, keep: np.ndarray) -> np.ndarray:
        """Prompts with kept rankings by at least ``min_labelers`` distinct labelers."""
        n = len(chunk.prompts)
        prompt, labeler = chunk.ranking_prompt[keep], chunk.ranking_labeler[keep]
        has = np.bincount(prompt, minlength=n) > 0
        pairs = np.unique(prompt * np.int64(max(int(labeler.max(initial=0)) + 1, 1)) + labeler)
        n_labelers = np.bincount(pairs // np.int64(max(int(labeler.max(initial=0)) + 1, 1)), minlength=n)
        enough = n_labelers >= self.options.min_labelers
        self.stats.prompts_without_rankings += int((~has).sum())
        self.stats.prompts_below_min_labelers += int((has & ~enough).sum())
        return has & enough

    def _agreement(self, chunk: Chunk, long: Long, prompt_keep: np.ndarray) -> tuple[Long, np.ndarray]:
        """Minimum per-prompt agreement (pairwise, ties dropped); then the agreement sums of what is kept."""
        if not len(long.item):
            return long, prompt_keep
        prompt_ids = np.array([prompt.id for prompt in chunk.prompts], dtype=np.int64)
        table = ag.RankTable.from_arrays(prompt_ids[long.item], long.labeler, long.response, long.rank)
        agree, total = ag.pairwise_counts(table, "drop")  # per prompt code (codes follow sorted prompt ids)
        present = np.unique(long.item)
        item_of_code = present[np.argsort(prompt_ids[present])]
        keep = np.ones(len(agree), dtype=bool)
        if self.options.min_agreement is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                per_prompt = np.where(total > 0, agree / np.where(total > 0, total, 1), np.nan)
            keep = per_prompt >= self.options.min_agreement - 1e-12  # NaN (no two labelers) fails too
            self.stats.prompts_below_min_agreement += int((~keep).sum())
            if not keep.all():
                prompt_keep = prompt_keep.copy()
                prompt_keep[item_of_code[~keep]] = False
                kept = np.zeros(chunk.n_rankings, dtype=bool)
                kept[long.source] = True
                long = Long.from_chunk(chunk, kept & prompt_keep[chunk.ranking_prompt])
        self.stats.agree += float(agree[keep].sum())
        self.stats.compared += float(total[keep].sum())
        parts, domain = ag.alpha_parts(table, ALPHA_TIE_CODING)
        summed = np.asarray(parts[np.flatnonzero(keep)].sum(axis=0)).ravel()
        width = len(domain)
        for cell in np.flatnonzero(summed).tolist():
            c, k = divmod(cell, width)
            self.stats.coincidences[(float(domain[c]), float(domain[k]))] += float(summed[cell])
        return long, prompt_keep

    def _sides(self, chunk: Chunk, prompt_keep: np.ndarray) -> dict[int, str]:
        items = np.flatnonzero(prompt_keep).tolist()
        sides = self.split.sides([chunk.prompts[i].id for i in items])
        return {item: sides[chunk.prompts[item].id] for item in items}

    # --- pairs ---------------------------------------------------------------------------------------------------

    def _pairs(self, chunk: Chunk, long: Long, side_of: dict[int, str]) -> dict[str, tuple[Batch, Counts]]:
        """The rows of each side (``side_of``: chunk prompt index -> side) by the strategy, with their counts."""
        keep_ties = self.options.ties == "keep"
        out = {side: (Batch(), Counts()) for side in (TRAIN, TEST)}
        if self.options.strategy == "all":
            self._all_pairs(chunk, long, side_of, out, keep_ties)
            return out
        rankings = long.rankings_by_item(chunk)
        consensus = {}
        if self.options.strategy == "consensus" and rankings:
            items = [(chunk.prompts[item], rankings[item]) for item in rankings]
            consensus = consensus_by_prompt(chunk_table(items))
        for item, item_rankings in rankings.items():
            batch, counts = out[side_of[item]]
            prompt = chunk.prompts[item]
            if self.options.strategy == "majority":
                counts.add(pairs_majority(batch, prompt, item_rankings, keep_ties))
            else:
                n_labelers = len({ranking.labeler for ranking in item_rankings})
                counts.add(pairs_from_ranks(batch, prompt, consensus[prompt.id], n_labelers, keep_ties))
        return out

    def _all_pairs(self, chunk: Chunk, long: Long, side_of: dict[int, str], out, keep_ties: bool) -> None:
        """Strategy ``all`` for the whole chunk at once (``all_pairs``), then split into the sides' batches."""
        better, worse, tie = all_pairs(long, keep_ties)
        listed, is_test = np.zeros(len(chunk.prompts), dtype=bool), np.zeros(len(chunk.prompts), dtype=bool)
        listed[list(side_of)] = True
        is_test[[item for item, side in side_of.items() if side == TEST]] = True
        pair_item = long.item[better]
        ranking_item = long.item[np.cumsum(long.sizes) - long.sizes]
        possible = long.sizes * (long.sizes - 1) // 2  # pairs per ranking, ties included
        for side, (batch, counts) in out.items():
            on_side = listed & (is_test == (side == TEST))
            mask = on_side[pair_item]
            b, w = better[mask], worse[mask]
            batch.prompts = [chunk.prompts[i] for i in np.flatnonzero(on_side).tolist()]
            batch.prompt = (np.cumsum(on_side) - 1)[pair_item[mask]].tolist()
            batch.chosen = long.response[b].tolist()
            batch.rejected = long.response[w].tolist()
            batch.margin = self._margins(chunk, long, b, w, tie[mask], counts).tolist()
            batch.tie = tie[mask].tolist()
            batch.ranking = long.ranking_ids[long.ranking[b]].tolist()
            counts.pairs = len(batch.chosen)
            if keep_ties:
                counts.tie_rows = int(tie[mask].sum())
            else:
                counts.ties_dropped = int(possible[on_side[ranking_item]].sum()) - counts.pairs

    def _margins(self, chunk: Chunk, long: Long, b: np.ndarray, w: np.ndarray, tie: np.ndarray, counts) -> np.ndarray:
        """The margin of each row (better row ``b``, worse row ``w``): the rank difference, or for ``score-diff``
        the chosen response's score minus the rejected one's (0 where either has none, or where the scores order
        the pair the other way), or for ``strength`` the mapping of the ranking's strength (0 where it has none).
        Tie rows have margin 0."""
        if self.options.margin == "score-diff":
            score = chunk.scores()[long.entry]
            diff = score[b] - score[w]
            missing = ~np.isfinite(diff) & ~tie
            clipped = np.isfinite(diff) & (diff < 0) & ~tie
            counts.margin_missing, counts.margin_clipped = int(missing.sum()), int(clipped.sum())
            return np.where(missing | clipped | tie, 0.0, diff)
        if self.options.margin == "strength":
            strength = chunk.strengths()[long.source[long.ranking[b]]]
            known = np.isfinite(strength) & (strength >= 1) & (strength <= 4)
            mapping = np.asarray(self.options.strength_margin_values, dtype=np.float64)
            counts.margin_missing = int((~known & ~tie).sum())
            level = np.where(known, strength, 1).astype(np.int64) - 1
            return np.where(known & ~tie, mapping[level], 0.0)
        return long.rank[w] - long.rank[b]

    def _ratings(self, chunk: Chunk, long: Long, side_of: dict[int, str]) -> dict[str, RatingsBatch]:
        """Dataset ``ratings``: one row per response of every kept ranking, by ranking then response id."""
        out = {side: RatingsBatch() for side in (TRAIN, TEST)}
        order = np.lexsort((long.response, long.ranking))
        values = chunk.entry_values
        item_batch: dict[tuple[str, int], int] = {}
        for row in order.tolist():
            item = int(long.item[row])
            if item not in side_of:
                continue
            batch = out[side_of[item]]
            key = (side_of[item], item)
            if key not in item_batch:
                item_batch[key] = batch.add_prompt(chunk.prompts[item])
            entry = int(long.entry[row])
            batch.prompt.append(item_batch[key])
            batch.response.append(int(long.response[row]))
            batch.rank.append(float(long.rank[row]))
            batch.ranking.append(int(long.ranking_ids[long.ranking[row]]))
            batch.labeler.append(int(long.labeler[row]))
            batch.values.append(values[entry] if values is not None else None)
        return out

    def _write_raw(self, chunk: Chunk, long: Long, side_of: dict[int, str], sink: Sink) -> None:
        parts = [
            raw_line(
                chunk.prompts[item], ranking.raw or {}, ranking.ranks, ranking.flags, side_of.get(item, ""), ranking.id
            )  # fmt: skip
            for item, rankings in long.rankings_by_item(chunk).items()
            for ranking in rankings
        ]
        sink.write_bytes(b"".join(parts))

    def _write_unsafe(self, chunk: Chunk, long: Long) -> None:
        assert self.unsafe is not None
        side_of = dict.fromkeys(np.unique(long.item).tolist(), TRAIN)
        if self.raw:
            self._write_raw(chunk, long, side_of, self.unsafe)
            return
        if self.options.dataset == "ratings":
            self.unsafe.write(self._ratings(chunk, long, side_of)[TRAIN])
            return
        batch, counts = self._pairs(chunk, long, side_of)[TRAIN]
        self.unsafe.write(batch)
        self.stats.unsafe_pairs += counts.pairs
