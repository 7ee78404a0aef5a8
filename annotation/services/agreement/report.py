"""The agreement report built from the loaded arrays (see the package docstring for conventions)."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model

from annotation import agreement as ag
from annotation.agreement.alpha import ALPHA_UNKNOWN_TIE_CODING
from annotation.agreement.bootstrap import percentile_interval, resampled_prompts
from annotation.models import Membership, Project, Prompt
from annotation.services.agreement.loading import HISTOGRAM_BINS, LOWEST_PROMPTS, Loaded, _codes, rankings_load
from annotation.services.agreement.ratings import ratings_agreement_get


def _num(value) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else round(value, 4)


def _interval(pair) -> list[float | None]:
    return [_num(pair[0]), _num(pair[1])]


def _ratio(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan)


def _alpha(sums: np.ndarray, domain: np.ndarray, level: str) -> np.ndarray:
    """Alpha from rows of summed, flattened coincidence matrices."""
    return ag.alpha_from_coincidences(sums.reshape(len(sums), len(domain), len(domain)), domain, level)


def _present(codes: np.ndarray, size: int) -> np.ndarray:
    """The sorted distinct codes (np.unique of small non-negative integers, by counting)."""
    return np.flatnonzero(np.bincount(codes, minlength=size))


@dataclass
class _Parts:
    """Per-prompt sufficient statistics of the headline figures, computed once and shared by the figures, their
    bootstrap intervals, the per-prompt distribution and the breakdowns."""

    coincidences: sp.csr_matrix  # (prompts, V * V): Krippendorff's coincidence matrix of each prompt
    domain: np.ndarray  # the V rank values
    kendall: np.ndarray  # (prompts, 2): W (0 where undefined) and 1 where defined
    pairs_dropped: np.ndarray  # (prompts, 2): agreeing and compared labeler pairs, ties dropped
    pairs_outcome: np.ndarray  # the same, a tie being a third outcome
    tie_coding: ag.TieCoding  # how alpha coded tied ranks

    @classmethod
    def of(cls, table: ag.RankTable, tie_coding: ag.TieCoding = ag.DEFAULT_TIE_CODING) -> "_Parts":
        coincidences, domain = ag.alpha_parts(table, tie_coding)
        w = ag.kendall_w(table)
        defined = np.isfinite(w)
        return cls(
            coincidences=coincidences,
            domain=domain,
            kendall=np.column_stack([np.where(defined, w, 0.0), defined.astype(np.float64)]),
            pairs_dropped=np.column_stack(ag.pairwise_counts(table, "drop")),
            pairs_outcome=np.column_stack(ag.pairwise_counts(table, "outcome")),
            tie_coding=tie_coding,
        )

    def figures(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """The figures from rows of column sums of `stacked()` (one row per resample, or the whole project)."""
        V2 = len(self.domain) ** 2  # noqa: N806
        return {
            "alpha_ordinal": _alpha(sums[:, :V2], self.domain, "ordinal"),
            "alpha_interval": _alpha(sums[:, :V2], self.domain, "interval"),
            "alpha_nominal": _alpha(sums[:, :V2], self.domain, "nominal"),
            "alpha_ratio": _alpha(sums[:, :V2], self.domain, "ratio"),
            "kendall_w_mean": _ratio(sums[:, V2 : V2 + 2]),
            "pairwise_agreement_ties_dropped": _ratio(sums[:, V2 + 2 : V2 + 4]),
            "pairwise_agreement_ties_as_outcome": _ratio(sums[:, V2 + 4 : V2 + 6]),
        }

    def stacked(self) -> sp.csr_matrix:
        blocks = [self.coincidences, self.kendall, self.pairs_dropped, self.pairs_outcome]
        return sp.hstack([sp.csr_matrix(block, dtype=np.float64) for block in blocks], format="csr")


INTERVALS = (
    "alpha_ordinal",
    "alpha_interval",
    "kendall_w_mean",
    "pairwise_agreement_ties_dropped",
    "pairwise_agreement_ties_as_outcome",
)


def _bootstrap(parts: _Parts, prompts: np.ndarray, n_boot: int, seed: int) -> dict[str, list]:
    """Percentile intervals of the figures: the resamples of `ag.bootstrap_sums` (same seed, same draws), each
    summing all the per-prompt parts in one sparse product instead of one pass per figure."""
    stacked = parts.stacked()[prompts].T.tocsr()
    values: dict[str, list] = {name: [] for name in INTERVALS}
    for draws in resampled_prompts(len(prompts), n_boot, seed):
        offsets = np.arange(len(draws))[:, None] * len(prompts)
        counts = np.bincount((draws + offsets).ravel(), minlength=draws.size).reshape(draws.shape)
        figures = parts.figures(np.asarray((stacked @ counts.T.astype(np.float64)).T))
        for name in INTERVALS:
            values[name].append(figures[name])
    return {name: _interval(percentile_interval(np.concatenate(values[name]))) for name in INTERVALS}


def headline(table: ag.RankTable, n_boot: int, seed: int = 0, parts: _Parts | None = None) -> dict:
    """The project figures, with 95% bootstrap intervals over prompts when n_boot > 0.

    The values and intervals of `ag.krippendorff_alpha`, `ag.kendall_w_mean`, `ag.pairwise_agreement` and their
    `ag.*_ci` functions, from per-prompt parts computed once."""
    parts = parts or _Parts.of(table)
    totals = np.asarray(parts.stacked().sum(axis=0))
    result = {name: _num(value[0]) for name, value in parts.figures(totals).items()}
    prompts = _present(table.prompt, table.n_prompts)
    result |= {"n_prompts": len(prompts), "n_labelers": len(_present(table.labeler, table.n_labelers))}
    result["tie_coding"] = parts.tie_coding
    if n_boot > 0:
        result["intervals"] = _bootstrap(parts, prompts, n_boot, seed)
    return result


def _dense(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(key, return_inverse=True) for non-negative integers below `size`, by counting when that is cheap."""
    if size > 4 * len(key) + 1024:
        return _codes(key)
    present = np.bincount(key, minlength=size) > 0
    return np.flatnonzero(present), (np.cumsum(present) - 1)[key]


def _breakdown(table: ag.RankTable, parts: _Parts, names: np.ndarray, codes: np.ndarray, row_ranking) -> list[dict]:
    """Agreement within each group of rows (a category, a guideline version, a week), groups in name order.

    Equals `ag.pairwise_agreement` and `ag.krippendorff_alpha` on each group's rows, in one pass for all groups:
    when every prompt's rankings fall in one group, the prompts' parts are summed per group; otherwise each prompt
    and response is split by group first, so that only rankings of the same group are compared."""
    n_groups = np.int64(len(names))
    sub_keys, sub_prompt = _dense(table.prompt * n_groups + codes, table.n_prompts * int(n_groups))
    owner = sub_keys % n_groups  # the group of each (prompt, group)
    if len(sub_keys) == len(_present(table.prompt, table.n_prompts)):  # one group per prompt: reuse its parts
        prompt_of = sub_keys // n_groups
        agree, compared = parts.pairs_dropped[prompt_of].T
        coincidences, domain = parts.coincidences[prompt_of], parts.domain
    else:
        _, sub_response = _dense(table.response * n_groups + codes, table.n_responses * int(n_groups))
        split = ag.RankTable(prompt=sub_prompt, labeler=table.labeler, response=sub_response, rank=table.rank)
        agree, compared = ag.pairwise_counts(split, "drop")
        coincidences, domain = ag.alpha_parts(split, parts.tie_coding)
    agree, compared = (np.bincount(owner, weights=c, minlength=n_groups) for c in (agree, compared))
    group_sums = sp.csr_matrix((np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(n_groups, len(owner)))
    alphas = _alpha(np.asarray((group_sums @ coincidences).todense()), domain, "ordinal")
    ranking_group = np.full(int(row_ranking.max()) + 1, -1, dtype=np.int64)
    ranking_group[row_ranking] = codes  # a ranking lies in one group
    n_rankings = np.bincount(ranking_group[ranking_group >= 0], minlength=n_groups)
    n_prompts = np.bincount(owner, minlength=n_groups)
    return [
        {
            "group": str(name),
            "n_prompts": int(n_prompts[code]),
            "n_rankings": int(n_rankings[code]),
            "pairwise_agreement_ties_dropped": _num(agree[code] / compared[code] if compared[code] else np.nan),
            "alpha_ordinal": _num(alphas[code]),
        }
        for code, name in enumerate(names)
        if n_prompts[code]
    ]


def _prompt_agreement(table: ag.RankTable, pairs_dropped: np.ndarray) -> tuple[dict, list[dict]]:
    """The distribution of per-prompt pairwise agreement, and the prompts with the lowest agreement."""
    agree, total = pairs_dropped[:, 0], pairs_dropped[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_prompt = np.where(total > 0, agree / total, np.nan)  # ag.pairwise_agreement_by_prompt
    defined = np.flatnonzero(np.isfinite(per_prompt))
    counts, edges = np.histogram(per_prompt[defined], bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    histogram = {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()}
    labelers = np.bincount(table.prompt, minlength=table.n_prompts)  # rows, turned into labelers below
    ranked = np.bincount(table.response, minlength=table.n_responses) > 0
    owner = np.zeros(table.n_responses, dtype=np.int64)
    owner[table.response] = table.prompt
    responses = np.bincount(owner[ranked], minlength=table.n_prompts)
    lowest = defined[np.argsort(per_prompt[defined], kind="stable")[:LOWEST_PROMPTS]]
    ids = [int(table.prompt_ids[code]) for code in lowest]
    texts = dict(Prompt.objects.filter(id__in=ids).values_list("id", "text"))
    rows = [
        {
            "prompt_id": pid,
            "text": texts.get(pid, "")[:200],
            "pairwise_agreement": _num(per_prompt[code]),
            "n_labelers": int(labelers[code] // max(responses[code], 1)),
        }
        for pid, code in zip(ids, lowest, strict=True)
    ]
    return histogram, rows


def _one_row_per_ranking(loaded: Loaded, rows: np.ndarray) -> np.ndarray:
    """One row index per ranking among `rows` (a boolean mask), in the order of the ranking ids."""
    picked = np.flatnonzero(rows)
    some_row = np.full(int(loaded.row_ranking.max()) + 1, -1, dtype=np.int64)
    some_row[loaded.row_ranking[picked]] = picked  # any row of a ranking: prompt, labeler and flags are its own
    return some_row[some_row >= 0]


def _flags(project: Project, loaded: Loaded, rows: np.ndarray) -> list[dict]:
    firsts = _one_row_per_ranking(loaded, rows)
    prompt, labeler, flag_set = loaded.table.prompt[firsts], loaded.table.labeler[firsts], loaded.row_flags[firsts]
    out = []
    for option in project.flag_choices:
        flagged = np.array([option["key"] in flags for flags in loaded.flag_sets], dtype=bool)[flag_set]
        out.append(
            {
                "flag": option["key"],
                "label": option.get("label", option["key"]),
                "rate": _num(flagged.mean()) if flagged.size else None,
                "kappa": _num(ag.flag_kappa(prompt, labeler, flagged)) if flagged.any() else None,
            }
        )
    return out


def _labelers(project: Project, loaded: Loaded) -> list[dict]:
    """Per-labeler scores over every non-gold and gold ranking (excluded labelers included, and marked)."""
    table = loaded.table
    gold = _gold_reference(project, table) if loaded.gold.any() else {}
    flagged = np.array([bool(flags) for flags in loaded.flag_sets], dtype=bool)[loaded.row_flags]
    scores = ag.labeler_scores(table, gold=gold or None, times=loaded.times, flags=flagged)
    ordinary = table.take(~loaded.gold) if loaded.gold.any() else table
    outliers = {o.labeler: o for o in ag.outlier_labelers(ag.consensus_agreement(ordinary))}
    ids = [int(table.labeler_ids[score["labeler"]]) for score in scores]
    users = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    members = set(Membership.objects.filter(project=project).values_list("user_id", flat=True))
    excluded = set(Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True))
    rows = []
    for score in scores:
        user_id = int(table.labeler_ids[score["labeler"]])
        outlier = outliers.get(score["labeler"])
        rows.append(
            {
                "user_id": user_id,
                "username": users.get(user_id, str(user_id)),
                "excluded": user_id in excluded,
                "removed": user_id not in members,  # no longer a member: their rankings are kept, and marked
                "outlier": outlier is not None,
                "outlier_p_value": _num(outlier.p_value) if outlier else None,
                **{k: (_num(v) if isinstance(v, float) else v) for k, v in score.items() if k != "labeler"},
            }
        )
    return sorted(rows, key=lambda r: (r["agreement"] is None, -(r["agreement"] or 0)))


def _gold_reference(project: Project, table: ag.RankTable) -> dict[int, dict[int, float]]:
    """Gold prompts' reference ranks, keyed by the table's prompt and response codes."""
    reference = {}
    prompt_code = {int(pid): code for code, pid in enumerate(table.prompt_ids)}
    response_code = {int(rid): code for code, rid in enumerate(table.response_ids)}
    for pid, ranks in Prompt.objects.filter(project=project, is_gold=True).values_list("id", "gold_ranks"):
        if pid in prompt_code and ranks:
            reference[prompt_code[pid]] = {
                response_code[int(rid)]: float(rank) for rid, rank in ranks.items() if int(rid) in response_code
            }
    return reference


def _leaderboard(table: ag.RankTable, n_boot: int) -> dict:
    """The model leaderboard, its per-component leaderboards when the comparison graph is disconnected (else
    empty) and its warnings (disconnected graph, fit not converged)."""
    if table.model is None or table.n_models < 2:
        return {"leaderboard": [], "leaderboard_components": [], "leaderboard_warnings": []}
    board = ag.leaderboard_fit(table, n_boot=n_boot)

    def named(rows: list[dict]) -> list[dict]:
        return [
            {**row, "model": str(table.model_ids[row["model"]]), **{k: _num(row[k]) for k in ("rating", "low", "high")}}
            for row in rows
        ]

    return {
        "leaderboard": named(board.rows),
        "leaderboard_components": [named(rows) for rows in board.components],
        "leaderboard_warnings": board.warnings,
    }


def agreement_report_get(
    *, project: Project, n_boot: int = 200, seed: int = 0, tie_coding: ag.TieCoding = ag.DEFAULT_TIE_CODING
) -> dict:
    """Every agreement figure of a project: headline with intervals, per-prompt distribution, per labeler,
    flags, breakdowns by category, guideline version and week, lowest-agreement prompts and a model leaderboard.

    ``tie_coding`` ("average" or "dense") is how alpha codes tied ranks; the report names it. The other figures
    use midranks within each ranking and do not depend on it."""
    if tie_coding not in ag.TIE_CODINGS:
        raise ValueError(ALPHA_UNKNOWN_TIE_CODING.format(tie_coding=tie_coding))
    loaded = rankings_load(project=project)
    if loaded is None:
        return {"project": project.slug, "n_rankings": 0, "n_prompts": 0, "n_labelers": 0}
    counted = ~loaded.gold & ~loaded.excluded
    everything = bool(counted.all())
    table = loaded.table if everything else loaded.table.take(counted)
    parts = _Parts.of(table, tie_coding)
    histogram, lowest = _prompt_agreement(table, parts.pairs_dropped)
    rankings = loaded.row_ranking if everything else loaded.row_ranking[counted]

    def breakdown(names, codes):
        return _breakdown(table, parts, names, codes if everything else codes[counted], rankings)

    return {
        "project": project.slug,
        "n_rankings": len(_present(rankings, int(loaded.row_ranking.max()) + 1)),
        **headline(table, n_boot, seed, parts),
        "per_prompt_histogram": histogram,
        "lowest_prompts": lowest,
        "labelers": _labelers(project, loaded),
        "flags": _flags(project, loaded, counted),
        "by_category": breakdown(loaded.category_names, loaded.category_code),
        "by_guideline_version": breakdown(loaded.guideline_names, loaded.guideline_code),
        "over_time": breakdown(loaded.week_names, loaded.week_code),
        **_leaderboard(table, n_boot),
        "response_form": ratings_agreement_get(project=project, n_boot=n_boot, seed=seed),
        "n_boot": n_boot,
    }
