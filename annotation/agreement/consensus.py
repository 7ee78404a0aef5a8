"""Consensus rankings per prompt, and a Bradley-Terry leaderboard of the models that wrote the responses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from annotation.agreement._groups import grouped_midranks, ranking_codes, response_owner, response_slots
from annotation.agreement.bootstrap import bootstrap_sums
from annotation.agreement.kemeny import kemeny_order, tie_levels
from annotation.agreement.pairwise import ranked_pairs
from annotation.agreement.table import RankTable

ELO_SCALE = 400.0  # Elo points per factor of 10 in strength, as Chatbot Arena reports Bradley-Terry scores
ELO_MEAN = 1000.0
LEADERBOARD_NO_MODELS = "The table has no model column: build it with model codes to rank models."
LEADERBOARD_DISCONNECTED = (
    "The models fall into {n} disconnected groups ({sizes} models): no model of one group was ever ranked against a "
    "model of another, so ratings compare only within a group. See the per-group leaderboards."
)
LEADERBOARD_NOT_CONVERGED = (
    "The Bradley-Terry fit did not converge in {max_iter} Newton steps: the ratings are not reliable."
)


@dataclass(frozen=True)
class Consensus:
    """One row per ranked response, sorted by prompt, then consensus rank, then response code.

    ``rank``: the response's level in the prompt's Kemeny consensus order (1 = best; responses the order leaves
    tied share a level, see ``consensus_ranking``); ``score``: the mean midrank the labelers gave the response
    (lower = better), kept for display and as the tie-break between equally good Kemeny orders. On partial rankings
    a smaller score does not imply a better rank."""

    prompt: np.ndarray
    response: np.ndarray
    score: np.ndarray
    rank: np.ndarray


def consensus_ranking(table: RankTable) -> Consensus:
    """Kemeny-Young consensus per prompt over the pairwise preferences the rankings express.

    A pair of responses counts only where a labeler ranked both (a labeler's tie: 1/2 to each side), so labelers
    who ranked different subsets combine correctly, which the mean midrank does not (a midrank from a 2-response
    ranking averaged with one from a 4-response ranking). Up to ``KEMENY_EXACT_MAX`` (8) responses a prompt gets
    an exactly Kemeny-optimal order, and among those the one closest to the mean-midrank (Borda) order; above
    that, the Borda order locally Kemenized (no adjacent pair against a strict majority). Consecutive responses
    stay tied (share a rank) when no labeler majority separates any two of them and their mean midranks are equal;
    every strict order the ranks allow is then equally Kemeny-optimal. Kemeny rather than a per-prompt
    Bradley-Terry fit: with 3-5 labelers a response that wins every comparison has an infinite BT strength.
    """
    if not table.n_rows:
        empty = np.empty(0, dtype=np.int64)
        return Consensus(empty, empty, np.empty(0), empty)
    ranking, _, _ = ranking_codes(table)
    midranks, _ = grouped_midranks(ranking, table.rank)
    total = np.bincount(table.response, weights=midranks, minlength=table.n_responses)
    count = np.bincount(table.response, minlength=table.n_responses)
    response = np.flatnonzero(count)
    owner = response_owner(table)
    score_of = np.zeros(table.n_responses)
    score_of[response] = total[response] / count[response]
    response = response[np.argsort(owner[response], kind="stable")]  # by prompt, then response code
    slots, _ = response_slots(table)
    pairs = ranked_pairs(table)
    pair_order = np.argsort(pairs.prompt, kind="stable")
    pair_prompt = pairs.prompt[pair_order]
    starts = np.flatnonzero(np.r_[True, owner[response][1:] != owner[response][:-1]])
    ranks = np.empty(len(response), dtype=np.int64)
    for start, stop in zip(starts, np.r_[starts[1:], len(response)], strict=True):
        prompt = owner[response[start]]
        chosen = pair_order[np.searchsorted(pair_prompt, prompt) : np.searchsorted(pair_prompt, prompt, "right")]
        first, second = slots[pairs.first[chosen]], slots[pairs.second[chosen]]
        won = (pairs.outcome[chosen] + 1) / 2.0  # +1 -> 1, tie -> 1/2, -1 -> 0
        votes = np.zeros((stop - start, stop - start))
        np.add.at(votes, (first, second), won)
        np.add.at(votes, (second, first), 1.0 - won)
        score = score_of[response[start:stop]]
        order = kemeny_order(votes, score)
        levels = tie_levels(order, votes, score)
        within = order[np.lexsort((response[start:stop][order], levels))]
        response[start:stop] = response[start:stop][within]
        ranks[start:stop] = np.sort(levels)
    return Consensus(prompt=owner[response], response=response, score=score_of[response], rank=ranks)


@dataclass(frozen=True)
class BradleyTerryFit:
    """``strengths`` (geometric mean 1, NaN for models without comparisons), whether the Newton steps converged,
    and how many were taken."""

    strengths: np.ndarray
    converged: bool
    n_iter: int


def bradley_terry(wins: np.ndarray, prior: float = 1.0, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Bradley-Terry strengths from ``wins[a, b]`` = times a beat b (ties counted as 1/2 to each side).

    Maximum likelihood of P(a beats b) = p_a / (p_a + p_b) by damped Newton steps on log-strengths (the
    log-likelihood is concave; Newton needs ~10 steps where Hunter's MM algorithm needs thousands when one model
    dominates). ``prior`` adds that many virtual tied games of every model against a fixed opponent of strength 1,
    which keeps a model that never lost finite; 0 gives the plain MLE, which exists only when the comparison graph
    is strongly connected (Zermelo 1929, Ford 1957). Returns strengths with geometric mean 1; NaN for models
    without comparisons. ``bradley_terry_fit`` also says whether the steps converged.
    """
    return bradley_terry_fit(wins, prior, tol, max_iter).strengths


def bradley_terry_fit(wins: np.ndarray, prior: float = 1.0, tol: float = 1e-10, max_iter: int = 100) -> BradleyTerryFit:
    """``bradley_terry`` with its convergence: converged when a Newton step moved no log-strength by ``tol``."""
    wins = np.asarray(wins, dtype=np.float64)
    played = (wins + wins.T).sum(axis=1) > 0
    strengths = np.full(len(wins), np.nan)
    if not played.any():
        return BradleyTerryFit(strengths, True, 0)
    w = wins[np.ix_(played, played)]
    games = w + w.T
    theta = np.zeros(len(w))
    free = np.arange(len(w) - (prior == 0))  # with no prior the scale is free: pin the last model at 0
    converged, n_iter = False, 0
    while n_iter < max_iter and not converged:
        n_iter += 1
        gradient, hessian = _bt_derivatives(theta, w, games, prior)
        step = np.zeros_like(theta)
        step[free] = np.linalg.lstsq(-hessian[np.ix_(free, free)], gradient[free], rcond=None)[0]
        current, scale = _bt_loglik(theta, w, prior), 1.0
        while _bt_loglik(theta + scale * step, w, prior) < current - 1e-12 and scale > 1e-6:
            scale /= 2.0
        theta = theta + scale * step
        converged = bool(np.max(np.abs(scale * step), initial=0.0) < tol)
    strengths[played] = np.exp(theta - theta.mean())
    return BradleyTerryFit(strengths, converged, n_iter)


def _bt_loglik(theta: np.ndarray, wins: np.ndarray, prior: float) -> float:
    difference = theta[:, None] - theta[None, :]
    return float((wins * log_expit(difference)).sum() + prior / 2.0 * (log_expit(theta) + log_expit(-theta)).sum())


def _bt_derivatives(
    theta: np.ndarray, wins: np.ndarray, games: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    s = expit(theta[:, None] - theta[None, :])
    anchor = expit(theta)
    gradient = wins.sum(axis=1) - (games * s).sum(axis=1) + prior / 2.0 - prior * anchor
    curvature = games * s * (1.0 - s)
    hessian = curvature - np.diag(curvature.sum(axis=1) + prior * anchor * (1.0 - anchor))
    return gradient, hessian


def elo_ratings(strengths: np.ndarray) -> np.ndarray:
    """Bradley-Terry strengths on an Elo-like scale: 400 points per factor 10, mean 1000 over rated models."""
    log_strength = ELO_SCALE * np.log10(strengths)
    rated = np.isfinite(log_strength)
    return log_strength - (log_strength[rated].mean() if rated.any() else 0.0) + ELO_MEAN


def model_win_parts(table: RankTable) -> sp.csr_matrix:
    """Per prompt, the flattened (n_models x n_models) matrix of wins between models (ties as 1/2 each way), from
    every labeler's ranking of two responses by different known models."""
    if table.model is None:
        raise ValueError(LEADERBOARD_NO_MODELS)
    n_models = table.n_models
    pairs = ranked_pairs(table)
    a, b = table.model[pairs.first_row], table.model[pairs.second_row]
    keep = (a >= 0) & (b >= 0) & (a != b)
    a, b, prompt = a[keep], b[keep], pairs.prompt[keep]
    first_wins = (pairs.outcome[keep] + 1) / 2.0  # +1 -> 1, tie -> 1/2, -1 -> 0
    cells = np.concatenate([a * n_models + b, b * n_models + a])
    amounts = np.concatenate([first_wins, 1.0 - first_wins])
    rows = np.concatenate([prompt, prompt])
    shape = (max(table.n_prompts, 1), n_models * n_models)
    return sp.coo_matrix((amounts, (rows, cells)), shape=shape).tocsr()


def comparison_components(wins: np.ndarray) -> np.ndarray:
    """Per model, the connected component of the comparison graph it lies in (models joined when either beat or
    tied the other at least once), numbered from 0 in order of their first model; -1 for models never compared."""
    wins = np.asarray(wins, dtype=np.float64)
    games = wins + wins.T
    played = games.sum(axis=1) > 0
    labels = np.full(len(wins), -1, dtype=np.int64)
    if not played.any():
        return labels
    _, found = connected_components(sp.csr_matrix(games[np.ix_(played, played)] > 0), directed=False)
    _, first = np.unique(found, return_index=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(first)] = np.arange(len(first))  # components in order of their first model
    labels[played] = renumber[found]
    return labels


@dataclass(frozen=True)
class Leaderboard:
    """A model leaderboard with its checks.

    ``rows``: every compared model, best first, fitted on all comparisons, each with its ``component``;
    ``components``: when the comparison graph is disconnected, one leaderboard per component fitted on that
    component's comparisons alone (its own Elo scale, mean 1000), else empty; ``converged``: every fit converged;
    ``warnings``: sentences for a disconnected graph and for a fit that did not converge."""

    rows: list[dict[str, float | int]]
    components: list[list[dict[str, float | int]]]
    n_components: int
    converged: bool
    warnings: list[str]


def leaderboard_fit(
    table: RankTable,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    prior: float = 1.0,
    max_iter: int = 100,
) -> Leaderboard:
    """Models by Bradley-Terry rating (Elo-like scale), best first, with percentile bootstrap intervals over
    prompts: ``model`` (code), ``rating``, ``low``, ``high``, ``n_comparisons``, ``win_rate`` (ties as 1/2) and
    ``component``. Ratings of models in different components of the comparison graph are not comparable (only the
    prior ties them together), so a disconnected graph is reported with per-component leaderboards."""
    parts = model_win_parts(table)
    n_models = table.n_models
    wins = np.asarray(parts.sum(axis=0)).reshape(n_models, n_models)
    labels = comparison_components(wins)
    n_components = int(labels.max(initial=-1)) + 1
    prompts = np.unique(table.prompt)
    rows, converged = _leaderboard_rows(parts, wins, np.flatnonzero(labels >= 0), prompts, n_boot, seed, alpha,
                                        prior, max_iter)  # fmt: skip
    components, warnings = [], []
    if n_components > 1:
        for number in range(n_components):
            models = np.flatnonzero(labels == number)
            part, ok = _leaderboard_rows(parts, wins, models, prompts, n_boot, seed, alpha, prior, max_iter)
            components.append([row | {"component": number} for row in part])
            converged &= ok
        sizes = ", ".join(str(int((labels == number).sum())) for number in range(n_components))
        warnings.append(LEADERBOARD_DISCONNECTED.format(n=n_components, sizes=sizes))
    if not converged:
        warnings.append(LEADERBOARD_NOT_CONVERGED.format(max_iter=max_iter))
    rows = [row | {"component": int(labels[row["model"]])} for row in rows]
    return Leaderboard(rows, components, n_components, converged, warnings)


def model_leaderboard(
    table: RankTable, n_boot: int = 200, seed: int = 0, alpha: float = 0.05, prior: float = 1.0
) -> list[dict[str, float | int]]:
    """The rows of ``leaderboard_fit`` (see there): models by Bradley-Terry rating, best first."""
    return leaderboard_fit(table, n_boot, seed, alpha, prior).rows


def _leaderboard_rows(
    parts: sp.csr_matrix,
    wins: np.ndarray,
    models: np.ndarray,
    prompts: np.ndarray,
    n_boot: int,
    seed: int,
    alpha: float,
    prior: float,
    max_iter: int,
) -> tuple[list[dict[str, float | int]], bool]:
    """The leaderboard of ``models`` fitted on their comparisons among themselves, and whether the fit converged."""
    n_models = len(wins)
    block = np.ix_(models, models)
    fit = bradley_terry_fit(wins[block], prior, max_iter=max_iter)
    rating = elo_ratings(fit.strengths)

    def finish(sums: np.ndarray) -> np.ndarray:
        fits = [bradley_terry(s.reshape(n_models, n_models)[block], prior, max_iter=max_iter) for s in sums]
        return np.stack([elo_ratings(strengths) for strengths in fits])

    boot = bootstrap_sums(parts, finish, prompts, n_boot, seed) if n_boot else np.empty((0, len(models)))
    games = (wins + wins.T)[block].sum(axis=1)
    won = wins[block].sum(axis=1)
    rows = []
    for index in np.flatnonzero(games > 0):
        column = boot[:, index] if len(boot) else np.empty(0)
        column = column[np.isfinite(column)]
        low, high = np.quantile(column, [alpha / 2, 1 - alpha / 2]) if column.size else (np.nan, np.nan)
        rows.append(
            {
                "model": int(models[index]),
                "rating": float(rating[index]),
                "low": float(low),
                "high": float(high),
                "n_comparisons": int(round(games[index])),
                "win_rate": float(won[index] / games[index]),
            }
        )
    return sorted(rows, key=lambda row: -row["rating"]), fit.converged
