"""Agreement on the per-response form: the score (Krippendorff's alpha, interval and ordinal) and each yes/no label
(alpha nominal and Fleiss' kappa). Units are responses (each belongs to one prompt), coders the labelers who
rated them; a response rated by one labeler only is unpairable and left out, as for ranks. Pure numpy.

Intervals: the percentile bootstrap over prompts of ``annotation.agreement.bootstrap`` (a prompt's responses are
resampled together), from per-prompt coincidence matrices, so a resample is one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.agreement.alpha import Level, alpha_from_coincidences, coincidence_parts
from annotation.agreement.bootstrap import bootstrap_sums_ci
from annotation.agreement.flags import fleiss_kappa

RATINGS_LENGTH_MISMATCH = "prompt, labeler, response and value must have the same length."
RATINGS_DUPLICATE = "Labeler code {labeler} rated response code {response} more than once."


@dataclass(frozen=True)
class FieldAgreement:
    """The agreement figures of one field. ``n_units``: responses rated by at least two labelers (with a value);
    ``n_values``: the values on them. ``interval``: the 95% bootstrap interval of ``alpha`` (NaNs without)."""

    alpha: float
    interval: tuple[float, float]
    n_units: int
    n_values: int


def _check(prompt, labeler, response, value) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(prompt, dtype=np.int64), np.asarray(labeler, dtype=np.int64)]
    arrays += [np.asarray(response, dtype=np.int64), np.asarray(value, dtype=np.float64)]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(RATINGS_LENGTH_MISMATCH)
    prompt, labeler, response, value = arrays
    if len(response):
        key = np.sort(response * np.int64(int(labeler.max()) + 1) + labeler)
        dup = np.flatnonzero(key[1:] == key[:-1])
        if dup.size:
            r, lab = divmod(int(key[dup[0]]), int(labeler.max()) + 1)
            raise ValueError(RATINGS_DUPLICATE.format(labeler=lab, response=r))
    keep = np.isfinite(value)
    return prompt[keep], labeler[keep], response[keep], value[keep]


def rating_alpha(
    prompt: np.ndarray,
    labeler: np.ndarray,
    response: np.ndarray,
    value: np.ndarray,
    level: Level = "interval",
    n_boot: int = 0,
    seed: int = 0,
) -> FieldAgreement:
    """Krippendorff's alpha of one field: one entry per (response, labeler) with its value (NaN: none, left out).
    ``prompt`` groups the responses for the bootstrap. NaN where undefined (nothing pairable, a single value)."""
    prompt, labeler, response, value = _check(prompt, labeler, response, value)
    if not len(value):
        return FieldAgreement(float("nan"), (float("nan"), float("nan")), 0, 0)
    _, unit = np.unique(response, return_inverse=True)
    unit = unit.reshape(-1)
    prompt_codes, group = np.unique(prompt, return_inverse=True)
    unit_group = np.zeros(int(unit.max()) + 1, dtype=np.int64)
    unit_group[unit] = group.reshape(-1)
    parts, domain = coincidence_parts(unit, value, unit_group, len(prompt_codes))
    V = len(domain)  # noqa: N806 - Krippendorff's notation

    def finish(sums: np.ndarray) -> np.ndarray:
        return alpha_from_coincidences(sums.reshape(len(sums), V, V), domain, level)

    alpha = float(finish(np.asarray(parts.sum(axis=0)).reshape(1, -1))[0]) if V else float("nan")
    interval = (float("nan"), float("nan"))
    if n_boot > 0 and V:
        interval = bootstrap_sums_ci(parts, finish, np.arange(len(prompt_codes)), n_boot, seed)
    per_unit = np.bincount(unit)
    pairable = per_unit >= 2
    return FieldAgreement(alpha, interval, int(pairable.sum()), int(per_unit[pairable].sum()))


def label_kappa(response: np.ndarray, value: np.ndarray) -> float:
    """Fleiss' kappa of a yes/no label, items = responses, raters = the labelers who rated each one (unequal
    numbers allowed, Fleiss & Cuzick 1979: ``annotation.agreement.flags.fleiss_kappa``). NaN values are left out."""
    response = np.asarray(response, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    keep = np.isfinite(value)
    response, value = response[keep], value[keep]
    if not len(response):
        return float("nan")
    codes, item = np.unique(response, return_inverse=True)
    yes = (value > 0).astype(np.int64)
    counts = np.bincount(item.reshape(-1) * 2 + yes, minlength=2 * len(codes)).reshape(len(codes), 2)
    return fleiss_kappa(counts)
