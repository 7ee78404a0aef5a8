"""A new policy's win rate against its reference, from judgments of their responses to the same prompts.

A judgment is one labeler's ranking of one prompt (or one reward model's scores of it): each (policy response,
reference response) pair in it counts 1 when the policy's is ranked better, 1/2 for a tie, 0 when worse. The win
rate pools the pairs: total wins / total pairs. Judgments of the same prompt share its responses, so they are not
independent: the confidence interval is a percentile bootstrap over prompts (a prompt drawn is drawn with all its
judgments), through the same resampler as every other interval of the agreement report. Pure numpy, no Django.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from annotation.agreement.bootstrap import percentile_interval, resampled_prompts


@dataclass(frozen=True)
class Judgment:
    """One judgment of one prompt: the ranks (1 = best; equal = tie) of the policy's and the reference's responses
    that were judged. For a reward model, pass minus its scores (a higher score is a better rank)."""

    prompt: int | str
    policy: Sequence[float]
    reference: Sequence[float]


@dataclass(frozen=True)
class WinRate:
    win_rate: float | None  # None: no (policy, reference) pair was judged
    low: float | None
    high: float | None
    wins: float  # pairs won (ties as halves)
    pairs: int
    judgments: int  # judgments with at least one pair
    prompts: int

    def as_dict(self) -> dict:
        return {"win_rate": self.win_rate, "low": self.low, "high": self.high, "wins": self.wins,
                "pairs": self.pairs, "judgments": self.judgments, "prompts": self.prompts}  # fmt: skip


def pair_wins(policy: Sequence[float], reference: Sequence[float]) -> tuple[float, int]:
    """(wins, pairs) over every (policy, reference) pair of one judgment; lower rank = better, ties count 1/2."""
    p = np.asarray(policy, dtype=np.float64)[:, None]
    r = np.asarray(reference, dtype=np.float64)[None, :]
    if not p.size or not r.size:
        return 0.0, 0
    return float((p < r).sum() + 0.5 * (p == r).sum()), int(p.size * r.size)


def win_rate(judgments: Iterable[Judgment], *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> WinRate:
    """The pooled win rate of the policy over the reference and its (1 - alpha) percentile bootstrap interval over
    prompts. A single prompt gives no interval (None): resampling one prompt cannot show how prompts vary."""
    per_prompt: dict[int | str, list[float]] = {}
    judged = 0
    for judgment in judgments:
        wins, pairs = pair_wins(judgment.policy, judgment.reference)
        if not pairs:
            continue
        judged += 1
        sums = per_prompt.setdefault(judgment.prompt, [0.0, 0.0])
        sums[0] += wins
        sums[1] += pairs
    if not per_prompt:
        return WinRate(None, None, None, 0.0, 0, 0, 0)
    table = np.array(list(per_prompt.values()), dtype=np.float64)  # (prompts, [wins, pairs])
    wins, pairs = table.sum(axis=0)
    low = high = None
    if len(table) > 1 and n_boot > 0:
        rates = []
        for draws in resampled_prompts(len(table), n_boot, seed):
            # counts[b, i] = how often prompt i was drawn in resample b: each resample's sums in one product
            counts = np.stack([np.bincount(row, minlength=len(table)) for row in draws])
            sums = counts @ table
            rates.append(sums[:, 0] / sums[:, 1])
        low, high = percentile_interval(np.concatenate(rates), alpha)
    return WinRate(float(wins / pairs), low, high, float(wins), int(pairs), judged, len(table))
