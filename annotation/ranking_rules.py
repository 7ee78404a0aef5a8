"""Pure validation of one ranking (no Django): the same rules run in the page (static/annotation/label.js)."""

RANK_MISSING = "Response {response_id} has no rank: every response must be ranked."
RANK_FOREIGN = "Response {response_id} is not one of the responses shown for this prompt."
RANK_NOT_INT = "Rank {rank!r} for response {response_id} is not a whole number."
RANK_OUT_OF_RANGE = "Rank {rank} for response {response_id} is outside 1..{k}."
RANK_NOT_DENSE = "Ranks must be dense: {ranks} skips rank {missing} (ties share a rank, e.g. 1, 2, 2, 3)."
RANK_TIES_FORBIDDEN = "This project does not allow ties: ranks {ranks} repeat a rank."


def ranking_errors(ranks: dict[int, object], shown: list[int], *, allow_ties: bool = True) -> list[str]:
    """Every reason `ranks` ({response_id: rank}) is not a valid ranking of the responses `shown`; [] when valid."""
    errors = [RANK_FOREIGN.format(response_id=rid) for rid in ranks if rid not in set(shown)]
    errors += [RANK_MISSING.format(response_id=rid) for rid in shown if rid not in ranks]
    k = len(shown)
    values: list[int] = []
    for rid in shown:
        if rid not in ranks:
            continue
        rank = ranks[rid]
        if isinstance(rank, bool) or not isinstance(rank, int):
            shown_rank = f"{rank[:17]}..." if isinstance(rank, str) and len(rank) > 20 else rank
            errors.append(RANK_NOT_INT.format(rank=shown_rank, response_id=rid))
        elif not 1 <= rank <= k:
            errors.append(RANK_OUT_OF_RANGE.format(rank=rank, response_id=rid, k=k))
        else:
            values.append(rank)
    if errors:
        return errors
    distinct = sorted(set(values))
    missing = next((expected for expected, got in enumerate(distinct, start=1) if expected != got), None)
    if missing is not None:
        errors.append(RANK_NOT_DENSE.format(ranks=sorted(values), missing=missing))
    if not allow_ties and len(distinct) != len(values):
        errors.append(RANK_TIES_FORBIDDEN.format(ranks=sorted(values)))
    return errors
