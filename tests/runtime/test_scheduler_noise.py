"""The scheduler on profiles of a busy machine: a burst of outliers in some configurations' runs
gives the same plans as the quiet profile, and a configuration that is slow on most of its runs is
still refused (issue 13, item 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hpv.profiles.schema import LatencyStats, ProfileFile, robust_p90
from hpv.runtime import plan, plans_table
from tests.profiles import factory

FPS = list(range(10, 75, 5))


def with_samples(p, samples):
    return p.model_copy(update={"latency": LatencyStats.from_samples(list(samples), warmup=2)})


BURST_50 = (3, 4, 5, 11, 12, 30, 31)  # 7 of 50 runs, in three bursts


def bursty(device, *, every: int = 1, at=BURST_50, factor: float = 6.0):
    """`device` with the runs at positions `at` of every `every`-th pipeline taking `factor` x as
    long, as when another process takes the CPU for a moment."""
    pipes = []
    for i, p in enumerate(device.pipelines):
        s = list(p.latency.samples_ms)
        if i % every == 0:
            for j in at:
                s[j] *= factor
        pipes.append(with_samples(p, s))
    return device.model_copy(update={"pipelines": pipes})


def chosen_rows(device):
    rows = plans_table(ProfileFile(schema_version=1, generator="t", devices=[device]), FPS)["devices"][0]["rows"]
    return [(r["fps"], r["feasible"], r["config"] and (r["config"]["precision"], r["config"]["steps"]),
             [(c["precision"], c["steps"]) for c in r["ladder"]]) for r in rows]


@pytest.mark.parametrize("runs", [20, 50])
def test_a_burst_of_outliers_gives_the_same_plans(runs):
    quiet = factory.device(precisions=("fp32", "int8"))
    quiet = quiet.model_copy(update={"pipelines": [
        with_samples(p, factory.latency(p.latency.p50_ms, runs=runs, seed=i).samples_ms)
        for i, p in enumerate(quiet.pipelines)]})
    noisy = bursty(quiet, at=BURST_50 if runs == 50 else (3, 4, 11))  # 3 of 20: the profile
    # the plain p90 of the noisy profile is the burst: 3-6x the median
    assert all(p.latency.p90_ms > 2 * p.latency.p50_ms for p in noisy.pipelines)
    assert chosen_rows(noisy) == chosen_rows(quiet)
    for fps in (20, 30, 40):
        a, b = plan(quiet, fps), plan(noisy, fps)
        assert (a.config.precision, a.config.steps) == (b.config.precision, b.config.steps)
        assert b.per_frame_p90_ms == pytest.approx(a.per_frame_p90_ms, rel=0.03)


def test_outliers_in_some_configurations_do_not_move_the_plan_to_others():
    # before: the plan went to whichever configuration happened to have a quiet p90
    quiet = factory.device(precisions=("fp32", "int8"))
    noisy = bursty(quiet, every=3, factor=8.0)
    assert chosen_rows(noisy) == chosen_rows(quiet)


def test_a_genuinely_slow_configuration_is_still_refused():
    d = factory.device(max_steps=2)
    k2 = d.pipelines[2]  # 32 ms; fits 20 fps (42.5 ms budget)
    assert plan(d, 20).config.steps == 2
    # slower on every run
    slow = with_samples(k2, [x * 1.6 for x in k2.latency.samples_ms])
    assert plan(d.model_copy(update={"pipelines": [*d.pipelines[:2], slow]}), 20).config.steps == 1
    # slow on 40% of its runs: not a burst but how it runs, and the fence keeps most of them
    s = list(k2.latency.samples_ms)
    half = with_samples(k2, [x * 2 if i % 5 < 2 else x for i, x in enumerate(s)])
    assert half.per_frame_p90_ms > 42.5
    assert plan(d.model_copy(update={"pipelines": [*d.pipelines[:2], half]}), 20).config.steps == 1


def test_robust_p90_is_the_p90_without_outliers():
    rng = np.random.default_rng(1)
    quiet = (30 * (1 + 0.05 * np.abs(rng.standard_normal(40)))).tolist()
    value, outliers = robust_p90(quiet)
    assert outliers == 0 and value == pytest.approx(float(np.percentile(quiet, 90)))
    noisy = quiet[:36] + [150.0, 170.0, 160.0, 200.0]
    value, outliers = robust_p90(noisy)
    assert outliers == 4 and value == pytest.approx(float(np.percentile(quiet[:36], 90)))
    # never more than a quarter dropped; never above the plain p90
    busy = quiet[:24] + [150.0] * 16  # 40% slow: the machine's state, not a burst
    value, outliers = robust_p90(busy)
    assert outliers == 16 and value > 100 and value <= np.percentile(busy, 90)  # 10 of the 16 left out
    assert robust_p90([5.0] * 10) == (5.0, 0)


def test_noise_figures_are_recorded_and_old_profiles_still_plan(tmp_path):
    from hpv.profiles.schema import load_profile, write_profile

    noisy = bursty(factory.device())
    lat = noisy.pipelines[0].latency
    assert lat.outliers == len(BURST_50) and lat.spread == pytest.approx(lat.p90_ms / lat.p50_ms, rel=1e-3)
    assert lat.robust_p90_ms == pytest.approx(lat.planning_p90_ms) and lat.robust_p90_ms < lat.p90_ms
    assert 0 < lat.relative_mad < 0.1
    # a profile written before the noise figures: they are optional, and the plan reads the samples
    data = json.loads(factory.profile(noisy).model_dump_json())
    for p in data["devices"][0]["pipelines"]:
        for key in ("spread", "mad_ms", "outliers", "robust_p90_ms"):
            del p["latency"][key]
    data["devices"][0].pop("noise", None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = load_profile(path).devices[0]
    assert old.pipelines[0].latency.robust_p90_ms is None
    assert chosen_rows(old) == chosen_rows(noisy) == chosen_rows(factory.device())
    write_profile(tmp_path / "again.json", load_profile(path))  # and it writes back


def test_without_samples_the_plain_p90_is_planned_on():
    lat = LatencyStats(runs=50, warmup=5, p50_ms=10, p90_ms=30, p99_ms=40, mean_ms=12, min_ms=9)
    assert lat.planning_p90_ms == 30
    assert lat.model_copy(update={"robust_p90_ms": 11.0}).planning_p90_ms == 11.0
