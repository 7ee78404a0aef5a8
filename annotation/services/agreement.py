"""A project's agreement report: loads current rankings from the database into arrays, then calls the pure
`annotation.agreement` package. Read-only.

Conventions (docs/agreement.md): units are (prompt, response); gold prompts are left out of the headline figures
(they measure labelers against a reference instead); labelers a manager excluded stay in the per-labeler table
(marked) but are left out of every project figure.
"""

import json
from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotation import agreement as ag
from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry

HISTOGRAM_BINS = 10
LOWEST_PROMPTS = 20


@dataclass
class Loaded:
    """Current rankings of a project as aligned arrays: `table` rows plus per-row ranking attributes."""

    table: ag.RankTable
    ranking_id: np.ndarray
    times: np.ndarray
    flags: list[list[str]]  # per row: its ranking's flags
    guideline: np.ndarray
    week: np.ndarray  # per row: ISO week (YYYY-Www) its ranking was made in
    category: np.ndarray
    gold: np.ndarray  # per row: the prompt is gold
    excluded: np.ndarray  # per row: its labeler is excluded by a manager


def _fetch(queryset) -> list[tuple]:
    """Raw rows for a values_list queryset: skips model-instance and per-row ORM overhead (millions of rows)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def rankings_load(*, project: Project) -> Loaded | None:
    """Every current ranking entry of the project, or None when there is none."""
    entries = RankingEntry.objects.filter(ranking__project=project, ranking__is_current=True).order_by()
    rows = _fetch(
        entries.values_list("ranking__prompt_id", "ranking__labeler_id", "response_id", "rank", "shown_position",
                            "response__model_name", "ranking_id")
    )  # fmt: skip
    if not rows:
        return None
    prompt, labeler, response, rank, position, model, ranking = (np.array(c) for c in zip(*rows, strict=True))
    del rows
    table = ag.RankTable.from_arrays(prompt, labeler, response, rank.astype(float), position, model)
    per_ranking = {
        rid: (t, f, g, c)
        for rid, t, f, g, c in _fetch(
            Ranking.objects.filter(project=project, is_current=True)
            .order_by()
            .values_list("id", "time_spent_s", "flags", "guideline_version", "created_at")
        )
    }
    return _align(project, table, ranking, prompt, labeler, per_ranking)


def _week(created) -> str:
    if isinstance(created, str):  # SQLite hands back text from a raw cursor
        from datetime import datetime

        created = datetime.fromisoformat(created)
    year, week, _ = created.isocalendar()
    return f"{year}-W{week:02d}"


def _align(project: Project, table, ranking, prompt, labeler, per_ranking) -> Loaded:
    ids, index = np.unique(ranking, return_inverse=True)
    attrs = [per_ranking[int(rid)] for rid in ids]
    times = np.array([np.nan if a[0] is None else a[0] for a in attrs], dtype=float)[index]
    flags_per = [json.loads(a[1]) if isinstance(a[1], str) else (a[1] or []) for a in attrs]
    guideline = np.array([-1 if a[2] is None else a[2] for a in attrs])[index]
    week = np.array([_week(a[3]) for a in attrs])[index]
    prompts = dict(Prompt.objects.filter(project=project).values_list("id", "category"))
    gold_ids = set(Prompt.objects.filter(project=project, is_gold=True).values_list("id", flat=True))
    excluded_ids = set(Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True))
    prompt_ids = np.unique(prompt)
    category = np.array([prompts.get(int(p)) or "(none)" for p in prompt_ids])[np.searchsorted(prompt_ids, prompt)]
    return Loaded(
        table=table,
        ranking_id=ranking,
        times=times,
        flags=[flags_per[i] for i in index],
        guideline=guideline,
        week=week,
        category=category,
        gold=np.isin(prompt, list(gold_ids)),
        excluded=np.isin(labeler, list(excluded_ids)),
    )


def _num(value) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else round(value, 4)


def _interval(pair) -> list[float | None]:
    return [_num(pair[0]), _num(pair[1])]


def headline(table: ag.RankTable, n_boot: int, seed: int = 0) -> dict:
    """The project figures, with 95% bootstrap intervals over prompts when n_boot > 0."""
    figures = {
        "alpha_ordinal": ag.krippendorff_alpha(table, "ordinal"),
        "alpha_interval": ag.krippendorff_alpha(table, "interval"),
        "alpha_nominal": ag.krippendorff_alpha(table, "nominal"),
        "alpha_ratio": ag.krippendorff_alpha(table, "ratio"),
        "kendall_w_mean": ag.kendall_w_mean(table),
        "pairwise_agreement_ties_dropped": ag.pairwise_agreement(table, "drop"),
        "pairwise_agreement_ties_as_outcome": ag.pairwise_agreement(table, "outcome"),
    }
    result = {name: _num(value) for name, value in figures.items()}
    result |= {"n_prompts": int(np.unique(table.prompt).size), "n_labelers": int(np.unique(table.labeler).size)}
    if n_boot > 0:
        result["intervals"] = {
            "alpha_ordinal": _interval(ag.alpha_ci(table, "ordinal", n_boot, seed)),
            "alpha_interval": _interval(ag.alpha_ci(table, "interval", n_boot, seed)),
            "kendall_w_mean": _interval(ag.kendall_w_mean_ci(table, n_boot, seed)),
            "pairwise_agreement_ties_dropped": _interval(ag.pairwise_agreement_ci(table, "drop", n_boot, seed)),
            "pairwise_agreement_ties_as_outcome": _interval(ag.pairwise_agreement_ci(table, "outcome", n_boot, seed)),
        }
    return result


def _breakdown(table: ag.RankTable, groups: np.ndarray) -> list[dict]:
    """Agreement within each group of rows (a category, a guideline version, a week)."""
    out = []
    for group in np.unique(groups):
        sub = table.take(groups == group)
        out.append(
            {
                "group": str(group),
                "n_prompts": int(np.unique(sub.prompt).size),
                "n_rankings": int(np.unique(sub.prompt * np.int64(table.n_labelers) + sub.labeler).size),
                "pairwise_agreement_ties_dropped": _num(ag.pairwise_agreement(sub, "drop")),
                "alpha_ordinal": _num(ag.krippendorff_alpha(sub, "ordinal")),
            }
        )
    return out


def _prompt_agreement(table: ag.RankTable) -> tuple[dict, list[dict]]:
    """The distribution of per-prompt pairwise agreement, and the prompts with the lowest agreement."""
    per_prompt = ag.pairwise_agreement_by_prompt(table, "drop")
    defined = np.flatnonzero(np.isfinite(per_prompt))
    counts, edges = np.histogram(per_prompt[defined], bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    histogram = {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()}
    labelers = np.bincount(table.prompt, minlength=table.n_prompts)  # rows, turned into labelers below
    responses = np.bincount(table.prompt[np.unique(table.response, return_index=True)[1]], minlength=table.n_prompts)
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


def _first_rows(loaded: Loaded, rows: np.ndarray) -> np.ndarray:
    """One row index per ranking among `rows` (a boolean mask)."""
    picked = np.flatnonzero(rows)
    _, first = np.unique(loaded.ranking_id[picked], return_index=True)
    return picked[first]


def _flags(project: Project, loaded: Loaded, rows: np.ndarray) -> list[dict]:
    firsts = _first_rows(loaded, rows)
    prompt, labeler = loaded.table.prompt[firsts], loaded.table.labeler[firsts]
    out = []
    for option in project.flag_options:
        flagged = np.array([option["key"] in loaded.flags[i] for i in firsts], dtype=bool)
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
    gold = _gold_reference(project, table)
    flagged = np.array([bool(f) for f in loaded.flags])
    scores = ag.labeler_scores(table, gold=gold or None, times=loaded.times, flags=flagged)
    outliers = {o.labeler: o for o in ag.outlier_labelers(ag.consensus_agreement(table.take(~loaded.gold)))}
    users = dict(
        Membership.objects.filter(project=project).values_list("user_id", "user__username")
    )  # a labeler may have left the project: fall back to the id
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


def _leaderboard(table: ag.RankTable, n_boot: int) -> list[dict]:
    if table.model is None or table.n_models < 2:
        return []
    rows = ag.model_leaderboard(table, n_boot=n_boot)
    return [
        {**row, "model": str(table.model_ids[row["model"]]), **{k: _num(row[k]) for k in ("rating", "low", "high")}}
        for row in rows
    ]


def agreement_report_get(*, project: Project, n_boot: int = 200, seed: int = 0) -> dict:
    """Every agreement figure of a project: headline with intervals, per-prompt distribution, per labeler,
    flags, breakdowns by category, guideline version and week, lowest-agreement prompts and a model leaderboard."""
    loaded = rankings_load(project=project)
    if loaded is None:
        return {"project": project.slug, "n_rankings": 0, "n_prompts": 0, "n_labelers": 0}
    counted = ~loaded.gold & ~loaded.excluded
    table = loaded.table.take(counted)
    histogram, lowest = _prompt_agreement(table)
    return {
        "project": project.slug,
        "n_rankings": int(np.unique(loaded.ranking_id[counted]).size),
        **headline(table, n_boot, seed),
        "per_prompt_histogram": histogram,
        "lowest_prompts": lowest,
        "labelers": _labelers(project, loaded),
        "flags": _flags(project, loaded, counted),
        "by_category": _breakdown(table, loaded.category[counted]),
        "by_guideline_version": _breakdown(table, loaded.guideline[counted]),
        "over_time": _breakdown(table, loaded.week[counted]),
        "leaderboard": _leaderboard(table, n_boot),
        "n_boot": n_boot,
    }
