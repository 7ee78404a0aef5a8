"""The long-format ranking table every agreement metric reads.

One row per (ranking, response): a ranking is one labeler's judgment of one prompt. Ids are factorised into dense
integer codes so that every metric can group with ``np.bincount`` instead of Python loops.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

TABLE_LENGTH_MISMATCH = "RankTable column {name!r} has {got} rows, expected {expected}."
TABLE_NOT_1D = "RankTable column {name!r} must be one-dimensional."
TABLE_NOT_INTEGER = "RankTable column {name!r} must hold integer codes."
TABLE_NEGATIVE_CODE = "RankTable column {name!r} holds a code below {low}."
TABLE_BAD_RANK = "RankTable ranks must be finite numbers >= 1 (1 = best)."
TABLE_RESPONSE_TWO_PROMPTS = "Response code {response} appears under more than one prompt."
TABLE_DUPLICATE_RANK = "Labeler code {labeler} ranked response code {response} more than once."
TABLE_UNKNOWN_CODE = "RankTable column {name!r} holds code {code} but only {known} ids are known."
ROW_MISSING_FIELD = "Row {index} lacks {name!r}."

_CODE_COLUMNS = ("prompt", "labeler", "response")


def _as_codes(name: str, values: Any, low: int = 0) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(TABLE_NOT_1D.format(name=name))
    integral = array.dtype.kind in "iu" or (array.dtype.kind == "f" and np.array_equal(array, np.round(array)))
    if array.size and not integral:
        raise ValueError(TABLE_NOT_INTEGER.format(name=name))
    array = array.astype(np.int64, copy=False)
    if array.size and array.min() < low:
        raise ValueError(TABLE_NEGATIVE_CODE.format(name=name, low=low))
    return array


@dataclass(frozen=True)
class RankTable:
    """Rankings in long format: one row per (ranking, response).

    ``response`` codes are unique over the project, so a response belongs to exactly one prompt. ``rank`` is 1 for
    the best response; equal ranks are ties (dense ranks normally, averaged ranks such as 2.5 are accepted).
    The optional ``*_ids`` arrays map codes back to the original ids (index = code).
    """

    prompt: np.ndarray
    labeler: np.ndarray
    response: np.ndarray
    rank: np.ndarray
    position: np.ndarray | None = None
    model: np.ndarray | None = None
    prompt_ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    labeler_ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    response_ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    model_ids: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _CODE_COLUMNS:
            object.__setattr__(self, name, _as_codes(name, getattr(self, name)))
        rank = np.asarray(self.rank, dtype=np.float64)
        if rank.ndim != 1:
            raise ValueError(TABLE_NOT_1D.format(name="rank"))
        if rank.size and not (np.isfinite(rank).all() and rank.min() >= 1):
            raise ValueError(TABLE_BAD_RANK)
        object.__setattr__(self, "rank", rank)
        if self.position is not None:
            object.__setattr__(self, "position", _as_codes("position", self.position))
        if self.model is not None:
            object.__setattr__(self, "model", _as_codes("model", self.model, low=-1))
        self._check_lengths()
        self._check_id_maps()
        self._check_responses()

    def _check_lengths(self) -> None:
        expected = len(self.prompt)
        for name in ("labeler", "response", "rank", "position", "model"):
            column = getattr(self, name)
            if column is not None and len(column) != expected:
                raise ValueError(TABLE_LENGTH_MISMATCH.format(name=name, got=len(column), expected=expected))

    def _check_id_maps(self) -> None:
        for name in ("prompt", "labeler", "response", "model"):
            ids, codes = getattr(self, f"{name}_ids"), getattr(self, name)
            if ids is not None and codes is not None and codes.size and codes.max() >= len(ids):
                raise ValueError(TABLE_UNKNOWN_CODE.format(name=name, code=int(codes.max()), known=len(ids)))

    def _check_responses(self) -> None:
        if not self.n_rows:
            return
        owner = np.full(self.n_responses, -1, dtype=np.int64)
        owner[self.response] = self.prompt
        clash = np.flatnonzero(owner[self.response] != self.prompt)
        if clash.size:
            raise ValueError(TABLE_RESPONSE_TWO_PROMPTS.format(response=int(self.response[clash[0]])))
        key = np.sort(self.labeler * np.int64(self.n_responses) + self.response)
        dup = np.flatnonzero(key[1:] == key[:-1])
        if dup.size:
            labeler, response = divmod(int(key[dup[0]]), self.n_responses)
            raise ValueError(TABLE_DUPLICATE_RANK.format(labeler=labeler, response=response))

    @property
    def n_rows(self) -> int:
        return len(self.prompt)

    @property
    def n_prompts(self) -> int:
        return _n_codes(self.prompt, self.prompt_ids)

    @property
    def n_labelers(self) -> int:
        return _n_codes(self.labeler, self.labeler_ids)

    @property
    def n_responses(self) -> int:
        return _n_codes(self.response, self.response_ids)

    @property
    def n_models(self) -> int:
        if self.model is None:
            return 0
        return _n_codes(self.model, self.model_ids)

    def take(self, rows: np.ndarray) -> RankTable:
        """The table restricted to ``rows`` (indices or a boolean mask); codes and id maps are kept."""
        pick = {name: getattr(self, name)[rows] for name in ("prompt", "labeler", "response", "rank")}
        for name in ("position", "model"):
            column = getattr(self, name)
            pick[name] = None if column is None else column[rows]
        return replace(self, **pick)

    @classmethod
    def from_arrays(
        cls,
        prompt: Sequence[Hashable] | np.ndarray,
        labeler: Sequence[Hashable] | np.ndarray,
        response: Sequence[Hashable] | np.ndarray,
        rank: Sequence[float] | np.ndarray,
        position: Sequence[int] | np.ndarray | None = None,
        model: Sequence[Hashable | None] | np.ndarray | None = None,
    ) -> RankTable:
        """Build a table from columns of original ids, factorised into codes (sorted ids when they sort)."""
        prompt_codes, prompt_ids = factorize(prompt)
        labeler_codes, labeler_ids = factorize(labeler)
        response_codes, response_ids = factorize(response)
        model_codes = model_ids = None
        if model is not None:
            model_codes, model_ids = factorize(model, missing=None)
        return cls(
            prompt=prompt_codes,
            labeler=labeler_codes,
            response=response_codes,
            rank=np.asarray(rank, dtype=np.float64),
            position=None if position is None else np.asarray(position),
            model=model_codes,
            prompt_ids=prompt_ids,
            labeler_ids=labeler_ids,
            response_ids=response_ids,
            model_ids=model_ids,
        )

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> RankTable:
        """Build a table from dicts (keys prompt, labeler, response, rank, optional position and model) or tuples
        in that order. A row without a model, or with ``None``, gets model code -1."""
        names = ("prompt", "labeler", "response", "rank", "position", "model")
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for index, row in enumerate(rows):
            values = row if isinstance(row, Mapping) else dict(zip(names, row, strict=False))
            for name in names[:4]:
                if name not in values:
                    raise ValueError(ROW_MISSING_FIELD.format(index=index, name=name))
                columns[name].append(values[name])
            columns["position"].append(values.get("position"))
            columns["model"].append(values.get("model"))
        position = columns["position"]
        has_position = any(value is not None for value in position)
        if has_position and any(value is None for value in position):
            raise ValueError(ROW_MISSING_FIELD.format(index=position.index(None), name="position"))
        has_model = any(value is not None for value in columns["model"])
        return cls.from_arrays(
            columns["prompt"],
            columns["labeler"],
            columns["response"],
            columns["rank"],
            position=position if has_position else None,
            model=columns["model"] if has_model else None,
        )


def _n_codes(codes: np.ndarray, ids: np.ndarray | None) -> int:
    if ids is not None:
        return len(ids)
    return int(codes.max()) + 1 if codes.size else 0


def factorize(values: Sequence[Hashable] | np.ndarray, missing: object = ...) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes for hashable ids: ``(codes, ids)`` with ``ids[codes] == values``.

    Ids are sorted when they are numbers or strings, else numbered in order of first appearance. Values equal to
    ``missing`` (pass ``None`` for models) get code -1 and do not enter ``ids``.
    """
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    # numpy would turn [1, "a"] into strings: only all-number or all-string ids take the sorted route
    same_kind = array.dtype.kind in "iu" or (
        array.dtype.kind in "US" and (isinstance(values, np.ndarray) or all(isinstance(v, str | bytes) for v in values))
    )
    if array.ndim == 1 and same_kind and missing is ...:
        ids, codes = np.unique(array, return_inverse=True)
        return codes.astype(np.int64), ids
    lookup: dict[Hashable, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for index, value in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        if missing is not ... and value is missing:
            codes[index] = -1
            continue
        codes[index] = lookup.setdefault(value, len(lookup))
    ids = np.empty(len(lookup), dtype=object)
    ids[:] = list(lookup)
    return codes, ids
