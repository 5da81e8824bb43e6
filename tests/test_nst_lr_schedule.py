"""The optimizers' lr schedules, by steps and under a time limit."""
from __future__ import annotations

import math

from nodes.nst._optimizers import Hooks, lr_at, stage_lr


def test_cosine_decays_to_a_tenth_and_constant_stays():
    assert lr_at("cosine", 0.05, 0.0) == 0.05
    assert math.isclose(lr_at("cosine", 0.05, 0.5), 0.05 * 0.55)
    assert math.isclose(lr_at("cosine", 0.05, 1.0), 0.005)
    assert math.isclose(lr_at("cosine", 0.05, 3.0), 0.005)   # past the end: stays at the floor
    assert lr_at("constant", 0.05, 0.7) == 0.05


def test_without_a_time_limit_the_schedule_goes_by_the_steps():
    at = stage_lr("cosine", 0.1, 11, Hooks(), last_stage=True)
    assert at(0) == 0.1 and math.isclose(at(5), 0.055) and math.isclose(at(10), 0.01)


def _clock(left: list[float]) -> Hooks:
    return Hooks(time_left=lambda: left[0])


def test_a_time_limit_paces_the_last_stage_by_whichever_is_further_along():
    left = [100.0]
    at = stage_lr("cosine", 0.1, 101, _clock(left), last_stage=True)
    assert at(0) == 0.1
    left[0] = 50.0             # half the time gone at step 10: the schedule is half way
    assert math.isclose(at(10), 0.055)
    left[0] = 0.0              # out of time: the floor
    assert math.isclose(at(20), 0.01)
    left[0] = 90.0             # steps ahead of the clock: the steps count
    assert math.isclose(at(50), 0.055)


def test_earlier_stages_and_constant_schedules_ignore_the_clock():
    left = [100.0]
    earlier = stage_lr("cosine", 0.1, 11, _clock(left), last_stage=False)
    constant = stage_lr("constant", 0.1, 11, _clock(left), last_stage=True)
    left[0] = 1.0
    assert earlier(0) == 0.1 and constant(3) == 0.1
