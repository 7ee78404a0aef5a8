"""Loading a project's current rankings from the database into the arrays the agreement package reads."""

import json
from dataclasses import dataclass
from datetime import date

import numpy as np
from django.db import connection
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Coalesce

from annotation import agreement as ag
from annotation.models import MAX_RESPONSES, Membership, Project, Prompt, Ranking, RankingEntry, Response

HISTOGRAM_BINS = 10
LOWEST_PROMPTS = 20
_PACK = 16  # rank and shown position (both < 16) are packed with the response id into one integer per entry
assert MAX_RESPONSES < _PACK


@dataclass
class Loaded:
    """Current rankings of a project as aligned arrays: `table` rows plus per-row ranking attributes.

    Group attributes are held as codes into sorted names (`category`, `guideline` and `week` give them per row)."""

    table: ag.RankTable
    ranking_id: np.ndarray
    row_ranking: np.ndarray  # per row: a dense code of its ranking, in the order of the ranking ids
    times: np.ndarray
    flag_sets: list[list[str]]  # the distinct flag lists of the rankings
    row_flags: np.ndarray  # per row: the index of its ranking's flags in `flag_sets`
    gold: np.ndarray  # per row: the prompt is gold
    excluded: np.ndarray  # per row: its labeler is excluded by a manager
    category_names: np.ndarray  # sorted; "(none)" for prompts without a category
    category_code: np.ndarray  # per row
    guideline_names: np.ndarray  # sorted guideline versions; -1 where a ranking has none
    guideline_code: np.ndarray  # per row
    week_names: np.ndarray  # sorted ISO weeks (YYYY-Www) the rankings were made in
    week_code: np.ndarray  # per row

    @property
    def flags(self) -> list[list[str]]:
        """Per row: its ranking's flags."""
        return [self.flag_sets[i] for i in self.row_flags.tolist()]

    @property
    def category(self) -> np.ndarray:
        return self.category_names[self.category_code]

    @property
    def guideline(self) -> np.ndarray:
        return self.guideline_names[self.guideline_code]

    @property
    def week(self) -> np.ndarray:
        return self.week_names[self.week_code]


def _fetch(queryset, dtype: list[tuple[str, str]]) -> np.ndarray:
    """The rows of a values_list queryset as a structured array, read from the DB-API cursor itself: no model
    instances, no per-row converters or wrappers, no list of tuples (millions of rows)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return np.fromiter(cursor.cursor, dtype=np.dtype(dtype))


def rankings_load(*, project: Project) -> Loaded | None:
    """Every current ranking entry of the project, or None when there is none."""
    entries = _fetch(
        RankingEntry.objects.filter(ranking__project=project, ranking__is_current=True, ranking__staged=False)
        .order_by()
        .values_list("ranking_id", (F("response_id") * _PACK + F("rank")) * _PACK + F("shown_position")),
        [("ranking", "i8"), ("packed", "i8")],
    )
    if not len(entries):
        return None
    current = Ranking.objects.filter(project=project, is_current=True).order_by("id")
    rankings = _fetch(
        current.values_list(
            "id", "prompt_id", "labeler_id", "time_spent_s", Coalesce("guideline_version", Value(-1)),
            Cast("created_at", output_field=CharField()),  # text: no per-row datetime parsing
        ),
        [("id", "i8"), ("prompt", "i8"), ("labeler", "i8"), ("time", "O"), ("guideline", "i8"), ("created", "O")],
    )  # fmt: skip
    flagged = _fetch(current.exclude(flags=[]).values_list("id", "flags"), [("id", "i8"), ("flags", "O")])
    responses = _fetch(
        Response.objects.filter(prompt__project=project, prompt__staged=False)
        .order_by("id")
        .values_list("id", "model_name"),
        [("id", "i8"), ("model", "O")],
    )
    prompts = _fetch(
        Prompt.objects.filter(project=project).order_by("id").values_list("id", "category", "is_gold"),
        [("id", "i8"), ("category", "O"), ("gold", "?")],
    )
    return _align(project, entries, rankings, flagged, responses, prompts)


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each value's index in them)."""
    names, codes = np.unique(values, return_inverse=True)
    return names, codes.reshape(-1)


def _factorize_objects(values: np.ndarray) -> tuple[np.ndarray, list]:
    """Codes in order of first appearance for hashable Python objects (model names, flags as JSON text)."""
    lookup: dict = {}
    codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values.tolist()), np.int64, len(values))
    return codes, list(lookup)


def _align(project: Project, entries, rankings, flagged, responses, prompts) -> Loaded:
    ranking = entries["ranking"]
    response, rest = np.divmod(entries["packed"], _PACK * _PACK)
    rank, position = np.divmod(rest, _PACK)
    r_index = np.searchsorted(rankings["id"], ranking)  # rankings are sorted by id
    used = np.bincount(r_index, minlength=len(rankings)) > 0
    if not used.all():  # a ranking without entries takes no part
        rankings = rankings[used]
        r_index = np.searchsorted(rankings["id"], ranking)
    # prompts, labelers and responses: codes index their sorted ids, as RankTable.from_arrays gives them
    prompt_ids, r_prompt = _codes(rankings["prompt"])
    labeler_ids, r_labeler = _codes(rankings["labeler"])
    response_at = np.searchsorted(responses["id"], response)  # responses are sorted by id
    ranked = np.bincount(response_at, minlength=len(responses)) > 0
    response_ids = responses["id"][ranked]
    response_code = (np.cumsum(ranked) - 1)[response_at]
    # models: codes in order of first appearance over the rows, as RankTable.from_arrays gives them
    name_code, names = _factorize_objects(responses["model"])
    row_name = name_code[response_at]
    first = np.full(len(names), len(row_name))
    np.minimum.at(first, row_name, np.arange(len(row_name)))
    seen = np.flatnonzero(first < len(row_name))
    order = seen[np.argsort(first[seen], kind="stable")]
    model_code = np.zeros(len(names), dtype=np.int64)
    model_code[order] = np.arange(len(order))
    model_ids = np.empty(len(order), dtype=object)
    model_ids[:] = [names[i] for i in order]
    table = ag.RankTable(
        prompt=r_prompt[r_index], labeler=r_labeler[r_index], response=response_code, rank=rank.astype(float),
        position=position, model=model_code[row_name], prompt_ids=prompt_ids, labeler_ids=labeler_ids,
        response_ids=response_ids, model_ids=model_ids,
    )  # fmt: skip
    # flags: only flagged rankings were fetched; code 0 is "no flags"
    texts = flagged["flags"]
    if texts.size and not isinstance(texts[0], str):  # PostgreSQL's driver decodes JSON itself
        texts = np.array([json.dumps(f) for f in texts.tolist()], dtype=object)
    flag_code, flag_texts = _factorize_objects(texts)
    r_flags = np.zeros(len(rankings), dtype=np.int64)
    at = np.searchsorted(rankings["id"], flagged["id"])
    known = at < len(rankings)
    known[known] = rankings["id"][at[known]] == flagged["id"][known]
    r_flags[at[known]] = flag_code[known] + 1
    # categories and gold per prompt; guideline version and week per ranking
    prompt_at = np.searchsorted(prompts["id"], prompt_ids)
    category = np.array([c or "(none)" for c in prompts["category"][prompt_at].tolist()])
    category_names, category_code = _codes(category)
    guideline_names, r_guideline = _codes(rankings["guideline"])
    days, r_day = _codes(rankings["created"].astype("U10").astype("datetime64[D]"))  # 'YYYY-MM-DD HH:MM...'
    week_names, day_week = _codes(np.array([_week(day) for day in days.tolist()]))
    excluded_ids = Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    return Loaded(
        table=table,
        ranking_id=ranking,
        row_ranking=r_index,
        times=rankings["time"].astype(float)[r_index],  # None -> NaN
        flag_sets=[[], *([] if f is None else json.loads(f) or [] for f in flag_texts)],
        row_flags=r_flags[r_index],
        gold=prompts["gold"][prompt_at][table.prompt],
        excluded=np.isin(labeler_ids, list(excluded_ids))[table.labeler],
        category_names=category_names,
        category_code=category_code[table.prompt],
        guideline_names=guideline_names,
        guideline_code=r_guideline[r_index],
        week_names=week_names,
        week_code=day_week[r_day][r_index],
    )
