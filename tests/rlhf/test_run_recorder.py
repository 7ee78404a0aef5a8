"""The worker's progress callback: throttled writes of step/total/ETA, metric points and the log tail, and
cancellation through TrainingCancelled."""

import pytest

from rlhf.models import RunMetric, TrainingRun
from rlhf.services import RunRecorder
from rlhf.training.progress import ProgressEvent, TrainingCancelled
from tests.factories import ProjectFactory
from tests.rlhf.conftest import make_run


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def run(db):
    return make_run(ProjectFactory(), status="running")


def test_recorder_writes_step_total_metrics_and_log_at_once_for_setup_and_eval(run):
    recorder = RunRecorder(run, clock=FakeClock())
    recorder(ProgressEvent(0, 0, {"train/pairs": 12}, "loading pairs", stage="setup"))
    recorder(ProgressEvent(10, 10, {"eval/accuracy": 0.75}, "evaluating", stage="eval"))

    run.refresh_from_db()
    assert (run.step, run.total_steps, run.stage) == (10, 10, "eval")
    assert list(RunMetric.objects.filter(run=run).values_list("step", "name", "value")) == [
        (0, "train/pairs", 12.0),
        (10, "eval/accuracy", 0.75),
    ]
    assert run.log_tail.splitlines()[-2].endswith("loading pairs")
    assert run.log_tail.splitlines()[-1].endswith("evaluating")
    assert run.heartbeat_at is not None


def test_recorder_throttles_train_steps_but_keeps_every_point(run):
    clock = FakeClock()
    recorder = RunRecorder(run, flush_s=1.5, clock=clock)
    recorder(ProgressEvent(1, 100, {"train/loss": 0.9}, stage="train"))  # first train event: written
    clock.now += 0.5
    recorder(ProgressEvent(2, 100, {"train/loss": 0.8}, stage="train"))  # too soon: buffered
    run.refresh_from_db()
    assert run.step == 1 and RunMetric.objects.filter(run=run).count() == 1

    clock.now += 1.5
    recorder(ProgressEvent(3, 100, {"train/loss": 0.7, "train/eta_s": 12.0}, stage="train"))
    run.refresh_from_db()
    assert run.step == 3
    assert list(RunMetric.objects.filter(run=run).values_list("step", "value")) == [(1, 0.9), (2, 0.8), (3, 0.7)]


def test_recorder_estimates_eta_from_the_step_rate(run):
    clock = FakeClock()
    recorder = RunRecorder(run, flush_s=0, clock=clock)
    recorder(ProgressEvent(10, 110, stage="train"))
    clock.now += 20  # 10 steps in 20 s: 2 s a step, 90 steps left
    recorder(ProgressEvent(20, 110, stage="train"))
    run.refresh_from_db()
    assert run.eta_s == pytest.approx(180.0)
    assert run.percent == 18


def test_recorder_raises_training_cancelled_once_cancel_is_requested(run):
    recorder = RunRecorder(run, flush_s=0, clock=FakeClock())
    recorder(ProgressEvent(1, 10, {"train/loss": 1.0}))
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    with pytest.raises(TrainingCancelled):
        recorder(ProgressEvent(2, 10, {"train/loss": 0.9}))
    assert RunMetric.objects.filter(run=run).count() == 2  # the points written before stopping are kept


def test_recorder_keeps_only_the_last_200_log_lines_and_skips_non_finite_values(run):
    recorder = RunRecorder(run, flush_s=0, clock=FakeClock())
    for step in range(1, 251):
        recorder(ProgressEvent(step, 250, {"train/loss": float("nan")}, f"line {step}"))
    run.refresh_from_db()
    lines = run.log_tail.splitlines()
    assert len(lines) == 200 and lines[-1].endswith("line 250") and lines[0].endswith("line 51")
    assert not RunMetric.objects.filter(run=run).exists()


def test_eta_follows_the_recent_rate_not_the_warm_up(run):
    """A slow first step (warm-up) must not drag the estimate for the rest of the run: the window forgets it."""
    clock = FakeClock()
    recorder = RunRecorder(run, flush_s=0, clock=clock)
    recorder(ProgressEvent(1, 1000, stage="train"))
    clock.now += 600  # the first step took 10 minutes (model loading); afterwards 1 s a step
    for step in range(2, 400):
        clock.now += 1
        recorder(ProgressEvent(step, 1000, stage="train"))
    run.refresh_from_db()
    assert run.eta_s == pytest.approx(1000 - 399, rel=0.02)


def test_chain_stages_are_named_and_each_has_its_own_eta(run):
    clock = FakeClock()
    recorder = RunRecorder(run, flush_s=0, clock=clock)
    recorder(ProgressEvent(0, 0, {"chain/stage": 2.0}, message="[2/4 sft] start", stage="setup"))
    for step in (1, 2, 3):
        clock.now += 10  # SFT: 10 s a step
        recorder(ProgressEvent(step, 10, {"chain/stage": 2.0}, stage="train"))
    run.refresh_from_db()
    assert run.stage == "2/4 SFT" and run.eta_s == pytest.approx(70.0)

    recorder(ProgressEvent(0, 0, {"chain/stage": 3.0}, stage="setup"))
    run.refresh_from_db()
    assert run.stage == "3/4 reward model" and run.eta_s is None  # a new stage: no rate yet, not SFT's
    for step in (1, 2):
        clock.now += 1  # the reward model: 1 s a step
        recorder(ProgressEvent(step, 50, {"chain/stage": 3.0}, stage="train"))
    run.refresh_from_db()
    assert run.stage == "3/4 reward model" and run.eta_s == pytest.approx(48.0)
    recorder(ProgressEvent(50, 50, {"chain/stage": 4.0}, stage="done"))
    run.refresh_from_db()
    assert run.stage == "done" and run.eta_s == 0.0
