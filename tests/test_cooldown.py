"""search/cooldown.py: the trained-on best of a time-budgeted search cools its learning rate
down to the deadline, and reports the cooled model."""

from __future__ import annotations

import pytest

from search.cooldown import COOLDOWN, FLOOR, cooldown_callback, lr_factor, report_cap
from search.data import DataOptions, load_task
from search.trial import Trial
from spaces import constants as C
from spaces.notation import parse_row


def test_the_rate_holds_then_falls_linearly_to_the_floor_and_stays():
    begin, end = COOLDOWN
    window = {"start": 100.0, "deadline": 200.0}
    assert lr_factor(100.0, **window) == 1.0
    assert lr_factor(100.0 + 100 * begin, **window) == 1.0
    middle = 100.0 + 100 * (begin + end) / 2
    assert lr_factor(middle, **window) == pytest.approx((1.0 + FLOOR) / 2)
    assert lr_factor(100.0 + 100 * end, **window) == FLOOR
    assert lr_factor(250.0, **window) == FLOOR  # past the deadline (a late report)
    scales = [lr_factor(100.0 + t, **window) for t in range(0, 101, 5)]
    assert scales == sorted(scales, reverse=True)  # never rises again
    # A trial that starts at or after the deadline has no time to train at full rate.
    assert lr_factor(5.0, start=10.0, deadline=10.0) == FLOOR


def test_while_cooling_one_report_lands_where_the_rate_has_cooled():
    # 100 examples a second of training; the rate has cooled at 0.9 of [0, 100] s: 90 s.
    assert report_cap(1000, 10.0, now=50.0, start=0.0, deadline=100.0) == 4000
    assert report_cap(1000, 10.0, now=89.999, start=0.0, deadline=100.0) == 1  # never 0
    assert report_cap(1000, 10.0, now=90.0, start=0.0, deadline=100.0) is None  # cooled
    assert report_cap(0, 0.0, now=50.0, start=0.0, deadline=100.0) is None  # no pace yet


@pytest.fixture(scope="module")
def mnist_tiny(data_dir):
    return load_task("mnist", DataOptions(data_dir=data_dir, subset=200, val_subset=50))


def test_a_trial_with_the_callback_trains_at_the_cooled_rate(mnist_tiny):
    """Before the window's cooldown the config's rate; past it, FLOOR of it, set batch by batch
    on the optimizer that `fit` steps."""
    config = parse_row("2L,8F(3X3)", task="mnist").replace(epochs=3, batch_size=50, lr=2e-3)
    clock = {"now": 0.0}
    cool = cooldown_callback(config.lr, start=0.0, deadline=100.0, clock=lambda: clock["now"])
    trial = Trial(config, mnist_tiny, seed=0)
    trial.callbacks.append(cool)
    reports = trial.reports()
    next(reports)
    assert cool.scale == 1.0
    assert float(trial.model.optimizer.learning_rate) == pytest.approx(2e-3)
    clock["now"] = 100.0 * (COOLDOWN[0] + COOLDOWN[1]) / 2
    next(reports)
    assert cool.scale == pytest.approx((1.0 + FLOOR) / 2)
    clock["now"] = 150.0
    third = next(reports)
    assert cool.scale == FLOOR
    assert float(trial.model.optimizer.learning_rate) == pytest.approx(2e-3 * FLOOR)
    assert third[C.EPOCH] == 3
