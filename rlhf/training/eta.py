"""Time left for a run, from a moving window of progress reports, and the names of a chain's stages.

Plain Python (no Django): the worker's progress bridge feeds it (time, step, total, phase) on every report.

Why a window and not the rate since the start: the first steps of a run include warm-up (tokenizer caches, the
first forward pass) and a chain's stages run at very different speeds, so a since-the-start rate is wrong for most
of the run; the last report alone jumps with every slow logging step. The rate over the last WINDOW_S seconds (at
least MIN_SAMPLES reports) follows the current speed without jumping, and it restarts when a new stage starts or
the step counter goes back (a chain's next stage counts its own steps).
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 120.0
MIN_SAMPLES = 3  # reports kept in the window even when they are older than WINDOW_S

# The chain's stages as the run page names them (rlhf/training/chain.py numbers them 1..4 in `chain/stage`).
CHAIN_STAGE_NAMES = ("base", "SFT", "reward model", "PPO")


def chain_stage_label(index: int) -> str:
    """'3/4 reward model' for the chain's stage number `index` (1-based); fits the run's 20-character stage."""
    n = len(CHAIN_STAGE_NAMES)
    name = CHAIN_STAGE_NAMES[index - 1] if 1 <= index <= n else f"stage {index}"
    return f"{index}/{n} {name}"


class MovingEta:
    def __init__(self, window_s: float = WINDOW_S, min_samples: int = MIN_SAMPLES):
        self.window_s, self.min_samples = window_s, min_samples
        self.samples: deque[tuple[float, int]] = deque()
        self.phase: object = None

    def update(self, now: float, step: int, total: int, phase: object = None) -> float | None:
        """Record a report; return the seconds left in this phase, or None while the rate is unknown."""
        if phase != self.phase or (self.samples and step < self.samples[-1][1]):
            self.samples.clear()
            self.phase = phase
        if step <= 0:  # setup reports carry no rate
            return None
        if self.samples and self.samples[-1][1] == step:
            self.samples[-1] = (self.samples[-1][0], step)  # same step reported again: keep its first time
        else:
            self.samples.append((now, step))
        while len(self.samples) > self.min_samples and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()
        if len(self.samples) < 2 or not total:
            return None
        (t0, s0), (t1, s1) = self.samples[0], self.samples[-1]
        seconds_per_step = (t1 - t0) / (s1 - s0)
        return round(seconds_per_step * max(total - step, 0), 1)
