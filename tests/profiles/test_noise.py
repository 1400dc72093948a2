"""How noisy a profile was: per measurement (p90 / p50, MAD, outliers, p90 without them), for the
whole profile (NoiseRecord), and the warning `hpv profile` prints (issue 13, item 3)."""

from __future__ import annotations

import pytest

from hpv.cli.profile import noise_warning
from hpv.profiles.schema import LatencyStats, NoiseRecord, noise_record
from tests.profiles import factory


def _with(device, index, samples):
    pipes = list(device.pipelines)
    pipes[index] = pipes[index].model_copy(update={"latency": LatencyStats.from_samples(samples, warmup=1)})
    return device.model_copy(update={"pipelines": pipes})


def _burst(samples, at, factor):
    return [x * factor if i in at else x for i, x in enumerate(samples)]


def test_quiet_profile_figures_and_no_warning():
    d = factory.device()
    noise = noise_record(d.artifacts, d.pipelines)
    assert noise.configurations == len(d.artifacts) + len(d.pipelines)
    assert 1 <= noise.median_spread <= noise.max_spread < 1.2 and noise.outlier_fraction == 0
    assert 0 < noise.median_relative_mad < 0.05 and noise.max_robust_spread < 1.2
    assert noise_warning(d) is None


def test_a_burst_says_the_plan_holds_but_not_to_commit_it():
    d = factory.device()
    d = _with(d, 1, _burst(d.pipelines[1].latency.samples_ms, {3, 4, 5, 6, 7, 8}, 6.0))
    message = noise_warning(d)
    assert message and "p90 up to 5." in message and "plans hold" in message and "idle machine" in message
    assert "unfit" not in message


def test_a_busy_machine_is_unfit_to_plan_on():
    d = factory.device()
    # every configuration with a fifth of its runs slow: not a burst in one, the machine's state
    pipes = [p.model_copy(update={"latency": LatencyStats.from_samples(
        [x * 4 if i % 5 == 0 else x for i, x in enumerate(p.latency.samples_ms)], warmup=1)}) for p in d.pipelines]
    busy = d.model_copy(update={"pipelines": pipes})
    message = noise_warning(busy)
    assert message.startswith("unfit to plan on") and "of all runs were outliers" in message
    # still noisy without its outliers: the plan's own figure is swung
    half = _with(d, 0, [x * 3 if i % 2 else x for i, x in enumerate(d.pipelines[0].latency.samples_ms)])
    assert "stayed noisy without their outliers" in noise_warning(half)
    # other processes took a core though every figure looks steady
    loaded = d.model_copy(update={"noise": noise_record(d.artifacts, d.pipelines, other_cpu_fraction=0.5)})
    message = noise_warning(loaded)
    assert message.startswith("unfit") and "other processes used 50% of the CPU" in message


def test_noise_record_bounds():
    with pytest.raises(ValueError):
        NoiseRecord(configurations=1, outlier_fraction=1.5)
    with pytest.raises(ValueError):
        NoiseRecord(configurations=1, other_cpu_fraction=-0.1)
    with pytest.raises(ValueError):  # more outliers than runs
        LatencyStats(runs=2, warmup=0, p50_ms=1, p90_ms=1, p99_ms=1, mean_ms=1, min_ms=1, outliers=3)
    with pytest.raises(ValueError):  # the robust p90 is never above the plain one
        LatencyStats(runs=2, warmup=0, p50_ms=1, p90_ms=1, p99_ms=1, mean_ms=1, min_ms=1, robust_p90_ms=2)


def test_a_local_profile_records_its_noise(small_build):
    from hpv.profiles.local import profile_local

    device = profile_local(small_build.folder, runs=6, rounds=2, warmup=1, pipeline_runs=12, peak_gmacs=1.0)
    noise = device.noise
    assert noise is not None and noise.configurations == len(device.artifacts) + len(device.pipelines)
    assert noise.other_cpu_fraction is not None and 0 <= noise.other_cpu_fraction <= 1
    assert noise.load_average is not None and noise.median_spread >= 1
    for lat in [a.latency for a in device.artifacts] + [p.latency for p in device.pipelines]:
        assert lat.spread >= 1 and lat.mad_ms is not None and lat.outliers is not None
        assert lat.min_ms <= lat.robust_p90_ms <= lat.p90_ms
