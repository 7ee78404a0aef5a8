"""Agreement on a project's per-response form (annotation.agreement.ratings): one entry per field of the form.

Same conventions as the ranking figures: current rankings only; gold prompts and labelers a manager excluded are
left out. A field's values are read from each rating's `values`, so ratings made before the form changed count
for the fields they have.
"""

import numpy as np

from annotation.agreement.ratings import label_kappa, rating_alpha
from annotation.models import Membership, Project, ResponseRating


def _num(value) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else round(value, 4)


def _rows(project: Project) -> list[tuple]:
    excluded = Membership.objects.filter(project=project, excluded=True).values("user_id")
    ratings = ResponseRating.objects.filter(
        ranking__project=project, ranking__is_current=True, ranking__prompt__is_gold=False
    ).exclude(ranking__labeler_id__in=excluded)
    return list(ratings.order_by().values_list("ranking__prompt_id", "ranking__labeler_id", "response_id", "values"))


def _column(rows: list[tuple], key: str, cast) -> np.ndarray:
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        value = (row[3] or {}).get(key) if isinstance(row[3], dict) else None
        if value is not None and not isinstance(value, str | dict | list):
            out[i] = cast(value)
    return out


def ratings_agreement_get(*, project: Project, n_boot: int = 200, seed: int = 0) -> dict | None:
    """{"n_ratings", "n_labelers", "score": {...} or None, "labels": [...], "texts": [...]} for the project's form;
    None when the project has no form."""
    fields = project.response_fields
    if not fields:
        return None
    rows = _rows(project)
    prompt = np.array([r[0] for r in rows], dtype=np.int64)
    labeler = np.array([r[1] for r in rows], dtype=np.int64)
    response = np.array([r[2] for r in rows], dtype=np.int64)
    report: dict = {"n_ratings": len(rows), "n_labelers": len(set(labeler.tolist())), "score": None}
    report["labels"], report["texts"] = [], []
    for field in fields:
        if field["type"] == "likert":
            value = _column(rows, field["key"], float)
            interval = rating_alpha(prompt, labeler, response, value, "interval", n_boot, seed)
            ordinal = rating_alpha(prompt, labeler, response, value, "ordinal")
            given = value[np.isfinite(value)]
            report["score"] = {
                "field": field["key"], "label": field["label"], "scale": [field["min"], field["max"]],
                "n_rated": len(given), "mean": _num(given.mean()) if len(given) else None,
                "alpha_interval": _num(interval.alpha), "interval": [_num(v) for v in interval.interval],
                "alpha_ordinal": _num(ordinal.alpha), "n_units": interval.n_units,
            }  # fmt: skip
        elif field["type"] == "label":
            value = _column(rows, field["key"], lambda v: float(bool(v)))
            nominal = rating_alpha(prompt, labeler, response, value, "nominal", n_boot, seed)
            given = value[np.isfinite(value)]
            report["labels"].append(
                {
                    "field": field["key"],
                    "label": field["label"],
                    "n_rated": len(given),
                    "rate": _num(given.mean()) if len(given) else None,
                    "alpha_nominal": _num(nominal.alpha),
                    "interval": [_num(v) for v in nominal.interval],
                    "kappa": _num(label_kappa(response, value)),
                    "n_units": nominal.n_units,
                }  # fmt: skip
            )
        else:
            filled = sum(1 for r in rows if isinstance(r[3], dict) and str(r[3].get(field["key"]) or "").strip())
            report["texts"].append({"field": field["key"], "label": field["label"], "n_filled": filled})
    return report
