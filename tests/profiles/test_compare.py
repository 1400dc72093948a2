"""`hpv compare`: regressions beyond noise fail (exit 1), noise and small changes do not, bad input
exits 2 with a message."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hpv.cli.compare import compare_command
from hpv.errors import ConfigError, ProfileError
from hpv.profiles.compare import (
    AGGREGATE_HALF_WIDTH, Method, Verdict, compare, estimate, median_interval, to_markdown,
)
from hpv.profiles.schema import LatencyStats, ProfileFile, write_profile
from tests.profiles import factory


def noisy_samples(p50_ms: float, *, sigma: float, seed: int, runs: int = 50) -> list[float]:
    """Run-to-run noise like a phone's: log-normal around p50_ms with a few slow outliers (GC,
    a core migration), not rescaled, so two seeds give two different medians."""
    rng = np.random.default_rng(seed)
    s = p50_ms * rng.lognormal(0.0, sigma, runs)
    slow = rng.random(runs) < 0.05
    s[slow] *= rng.uniform(1.3, 2.0, slow.sum())
    return s.tolist()


def remeasure(profile: ProfileFile, *, scale: float = 1.0, sigma: float = 0.1, seed: int = 0,
              runs: int = 50, aggregates_only: bool = False, only: str | None = None) -> ProfileFile:
    """The same configurations, measured again: every latency redrawn around scale x its p50 (only
    for configurations whose label contains `only`, when given)."""
    devices, i = [], 0

    def redraw(lat: LatencyStats, label: str) -> LatencyStats:
        nonlocal i
        i += 1
        factor = scale if only is None or only in label else 1.0
        new = LatencyStats.from_samples(noisy_samples(lat.p50_ms * factor, sigma=sigma, seed=seed * 1000 + i,
                                                      runs=runs), warmup=lat.warmup)
        return new.model_copy(update={"samples_ms": []}) if aggregates_only else new

    for d in profile.devices:
        arts = [a.model_copy(update={"latency": redraw(a.latency, a.artifact)}) for a in d.artifacts]
        pipes = [p.model_copy(update={"latency": redraw(p.latency, f"{p.precision} k={p.steps}")})
                 for p in d.pipelines]
        devices.append(d.model_copy(update={"artifacts": arts, "pipelines": pipes}))
    return profile.model_copy(update={"devices": devices})


@pytest.fixture
def base() -> ProfileFile:
    return factory.profile(factory.device("phone-a", precisions=("fp32", "int8")), factory.device("phone-b"))


def n_configs(profile: ProfileFile) -> int:
    return sum(len(d.artifacts) + len(d.pipelines) for d in profile.devices)


def run_cli(tmp_path, baseline: ProfileFile, current: ProfileFile, *args: str):
    b, c = tmp_path / "base.json", tmp_path / "cur.json"
    write_profile(b, baseline)
    write_profile(c, current)
    return CliRunner().invoke(compare_command, [str(b), str(c), *args])


def flat(text: str) -> str:
    return " ".join(text.split())


# -- the statistics ----------------------------------------------------------------------------

@pytest.mark.parametrize("n, ranks", [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (50, (18, 33)), (100, (40, 61))])
def test_median_interval_uses_the_binomial_order_statistics(n, ranks):
    """The textbook 95% ranks (1-based) of the distribution-free interval for the median."""
    median, lo, hi = median_interval([float(i) for i in range(1, n + 1)])
    assert (lo, hi) == ranks
    assert median == (n + 1) / 2


def test_median_interval_covers_the_median_at_least_as_often_as_claimed():
    rng = np.random.default_rng(7)
    hits = sum(lo <= 0.0 <= hi for _, lo, hi in (median_interval(rng.standard_normal(30).tolist())
                                                  for _ in range(1000)))
    assert hits >= 940


def test_too_few_samples_fall_back_to_p50_with_a_wider_margin():
    assert median_interval([1.0] * 5) is None
    lat = LatencyStats.from_samples([10.0, 11.0, 12.0], warmup=1)
    e = estimate(lat)
    assert e.method is Method.AGGREGATE
    assert (e.lo_ms, e.hi_ms) == pytest.approx((11 * (1 - AGGREGATE_HALF_WIDTH), 11 * (1 + AGGREGATE_HALF_WIDTH)))
    assert estimate(LatencyStats.from_samples(noisy_samples(10, sigma=0.1, seed=1), 5)).method is Method.ORDER_STATISTIC


# -- verdicts ----------------------------------------------------------------------------------

def test_identical_profiles_are_unchanged(base, tmp_path):
    result = compare(base, base, 10.0)
    assert len(result.entries) == n_configs(base)
    assert not result.regressions and not result.improvements
    assert all(e.change_pct == 0 for e in result.entries)
    r = run_cli(tmp_path, base, base)
    assert r.exit_code == 0, r.output
    assert "0 regressions" in flat(r.output)


@pytest.mark.parametrize("sigma", [0.05, 0.10, 0.15])
def test_noisy_a_a_runs_are_never_regressions(base, sigma):
    """Same distribution, independent draws: 20 pairs x 39 configurations, none flagged either way."""
    flagged = []
    for seed in range(20):
        a = remeasure(base, sigma=sigma, seed=2 * seed)
        b = remeasure(base, sigma=sigma, seed=2 * seed + 1)
        result = compare(a, b, 10.0)
        assert len(result.entries) == n_configs(base)
        flagged += [e.config.label for e in result.regressions + result.improvements]
    assert not flagged


def test_25_percent_slower_is_a_regression(base, tmp_path):
    # Symmetric 10% noise: read at the median (the lower quartile's interval is wider there).
    a = remeasure(base, sigma=0.1, seed=1)
    b = remeasure(base, sigma=0.1, seed=2, scale=1.25)
    result = compare(a, b, 10.0, quantile=0.5)
    assert len(result.regressions) == n_configs(base)
    assert all(15 < e.change_pct < 35 for e in result.regressions)
    r = run_cli(tmp_path, a, b, "--quantile", "0.5")
    assert r.exit_code == 1, r.output
    assert f"{n_configs(base)} regressions" in flat(r.output)


def test_contention_tail_moves_the_median_but_not_the_lower_quartile():
    """A shared machine's slow spells: the same work with 60% of the runs slowed 1.5-3x moves
    the median, not the lower quartile; the default reading calls it noise."""
    rng = np.random.default_rng(7)
    quiet = LatencyStats.from_samples((10 * (1 + 0.02 * rng.standard_normal(60))).tolist(), warmup=5)
    busy = 10 * (1 + 0.02 * rng.standard_normal(60))
    busy[rng.permutation(60)[:36]] *= rng.uniform(1.5, 3.0, 36)
    a = factory.profile(factory.device())
    art = a.devices[0].artifacts[0]

    def with_latency(lat):
        d = a.devices[0]
        return factory.profile(d.model_copy(update={"artifacts": [art.model_copy(update={"latency": lat})],
                                                    "pipelines": []}))

    busy_lat = LatencyStats.from_samples(busy.tolist(), warmup=5)
    assert busy_lat.p50_ms > 1.3 * quiet.p50_ms  # the median moved
    assert not compare(with_latency(quiet), with_latency(busy_lat), 10.0).regressions
    slower = LatencyStats.from_samples((12.5 * (1 + 0.02 * rng.standard_normal(60))).tolist(), warmup=5)
    assert compare(with_latency(quiet), with_latency(slower), 10.0).regressions


def test_only_the_slowed_configuration_is_flagged(base):
    a = remeasure(base, sigma=0.1, seed=3)
    b = remeasure(base, sigma=0.1, seed=4, scale=1.3, only="int8 k=3")
    labels = [(e.config.device, e.config.label) for e in compare(a, b, 10.0).regressions]
    assert labels == [("phone-a", "default int8 k=3 b1 768px")]


def test_with_and_without_the_part_stages_are_two_configurations():
    a = remeasure(factory.profile(factory.parts_device()), seed=3)
    d = a.devices[0]
    slower = [p.model_copy(update={"latency": LatencyStats.from_samples([x * 1.3 for x in p.latency.samples_ms],
                                                                        warmup=1)}) if p.parts else p
              for p in d.pipelines]
    b = a.model_copy(update={"devices": [d.model_copy(update={"pipelines": slower})]})
    assert sorted(e.config.label for e in compare(a, b, 10.0).regressions) == [
        "parts fp32 k=0 b1 512px +parts", "parts fp32 k=0 b1 768px +parts", "parts fp32 k=1 b1 768px +parts"]


def test_3_percent_slower_is_within_noise(base):
    for seed in range(5):
        a = remeasure(base, sigma=0.1, seed=10 + 2 * seed)
        b = remeasure(base, sigma=0.1, seed=11 + 2 * seed, scale=1.03)
        result = compare(a, b, 10.0)
        assert not result.regressions and result.exit_code == 0


def test_a_lower_threshold_catches_a_smaller_slowdown(base):
    a = remeasure(base, sigma=0.05, seed=1, runs=200)
    b = remeasure(base, sigma=0.05, seed=2, runs=200, scale=1.08)
    assert not compare(a, b, 10.0).regressions
    assert len(compare(a, b, 2.0).regressions) == n_configs(base)


def test_faster_is_an_improvement_and_passes(base, tmp_path):
    a = remeasure(base, sigma=0.1, seed=1)
    b = remeasure(base, sigma=0.1, seed=2, scale=0.7)
    result = compare(a, b, 10.0)
    assert len(result.improvements) == n_configs(base) and not result.regressions
    r = run_cli(tmp_path, a, b)
    assert r.exit_code == 0, r.output
    assert "improvement" in r.output


def test_aggregates_only_need_the_wider_margin(base, tmp_path):
    a = remeasure(base, sigma=0.02, seed=1, aggregates_only=True)
    slower_15 = remeasure(base, sigma=0.02, seed=2, scale=1.15, aggregates_only=True)
    slower_30 = remeasure(base, sigma=0.02, seed=2, scale=1.30, aggregates_only=True)
    assert all(e.baseline.method is Method.AGGREGATE for e in compare(a, slower_15, 10.0).entries)
    assert not compare(a, slower_15, 10.0).regressions
    assert len(compare(a, slower_30, 10.0).regressions) == n_configs(base)
    r = run_cli(tmp_path, a, slower_30)
    assert r.exit_code == 1
    assert "no per-run samples" in flat(r.output)


def test_configurations_in_one_file_only_are_reported_not_failed(tmp_path):
    baseline = factory.profile(factory.device("phone-a", max_steps=4), factory.device("phone-old"))
    current = factory.profile(factory.device("phone-a", max_steps=6), factory.device("phone-new"))
    result = compare(baseline, current, 10.0)
    assert {c.device for c in result.only_in_baseline} == {"phone-old"}
    assert {c.label for c in result.only_in_current if c.device == "phone-a"} == {
        "default fp32 k=5 b1 768px", "default fp32 k=6 b1 768px"}
    r = run_cli(tmp_path, baseline, current)
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "only in baseline, not compared: phone-old (onnx-cpu)" in out
    assert "only in current, not compared: phone-new (onnx-cpu)" in out


def test_batch_is_part_of_the_match():
    a = factory.profile(factory.device())
    d = a.devices[0]
    b = a.model_copy(update={"devices": [d.model_copy(update={
        "artifacts": [x.model_copy(update={"batch": 4}) for x in d.artifacts]})]})
    result = compare(a, b, 10.0)
    assert len(result.only_in_baseline) == len(result.only_in_current) == len(d.artifacts)
    assert all(e.config.kind == "pipeline" for e in result.entries)


# -- bad input ---------------------------------------------------------------------------------

def test_nothing_in_common_is_an_error(tmp_path):
    a = factory.profile(factory.device("phone-a"))
    b = factory.profile(factory.device("phone-b"))
    with pytest.raises(ProfileError, match="no configuration in common"):
        compare(a, b, 10.0)
    r = run_cli(tmp_path, a, b)
    assert r.exit_code == 2
    assert "no configuration in common" in flat(r.output) and "phone-b (onnx-cpu)" in flat(r.output)
    assert "--across-devices" in flat(r.output)
    assert "Traceback" not in r.output


def test_across_devices_matches_two_machines_configurations(tmp_path):
    a = factory.profile(factory.device("phone-a"))
    slower = remeasure(factory.profile(factory.device("phone-b")), scale=1.3, sigma=0.01)
    result = compare(a, slower, 10.0, across_devices=True)
    assert len(result.entries) == n_configs(a) and result.regressions
    r = run_cli(tmp_path, a, slower, "--across-devices")
    assert r.exit_code == 1 and "compared across devices" in flat(r.output)
    two = factory.profile(factory.device("phone-a"), factory.device("phone-b"))
    with pytest.raises(ProfileError, match="on two devices"):
        compare(two, a, 10.0, across_devices=True)


@pytest.mark.parametrize("content, message", [
    (None, "no profile at"),
    ("{not json", "is invalid"),
    ('{"schema_version": 1, "generator": "x"}', "is invalid"),
    ('{"schema_version": 9, "generator": "x", "devices": []}', "is invalid"),
])
def test_unreadable_or_invalid_files_exit_2(tmp_path, base, content, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_profile(good, base)
    if content is not None:
        bad.write_text(content)
    for args in ([str(good), str(bad)], [str(bad), str(good)]):
        r = CliRunner().invoke(compare_command, args)
        assert r.exit_code == 2, r.output
        assert message in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("garbage", [lambda x: float("nan"), lambda x: -x])
def test_nan_or_negative_samples_are_refused_not_passed(base, tmp_path, garbage):
    """All-NaN samples compared as '0 regressions' and negative ones as improvements."""
    slower = remeasure(base, scale=2.0, seed=1)
    d = slower.devices[0]
    a = d.artifacts[0]
    bad_latency = a.latency.model_copy(update={"samples_ms": [garbage(x) for x in a.latency.samples_ms]})
    bad = slower.model_copy(update={"devices": [d.model_copy(update={
        "artifacts": [a.model_copy(update={"latency": bad_latency}), *d.artifacts[1:]]}), *slower.devices[1:]]})
    with pytest.raises(ProfileError, match=f"the current profile: {a.artifact} b1 on phone-a .*latency.samples_ms.0"):
        compare(base, bad, 10.0)
    # Through the CLI the file's own NaN tokens are refused on read, naming the file and the field.
    good, cur = tmp_path / "base.json", tmp_path / "cur.json"
    write_profile(good, base)
    cur.write_text(json.dumps(bad.model_dump(mode="python")))
    r = CliRunner().invoke(compare_command, [str(good), str(cur)])
    assert r.exit_code == 2, r.output
    assert "cur.json is invalid" in flat(r.output) and "samples_ms.0" in r.output and "Traceback" not in r.output


def test_a_configuration_listed_twice_is_an_error(base):
    d = base.devices[1]
    twice = base.model_copy(update={"devices": [d.model_copy(update={"artifacts": d.artifacts * 2})]})
    with pytest.raises(ProfileError, match="twice"):
        compare(twice, base, 10.0)


def test_bad_thresholds(base, tmp_path):
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="threshold"):
            compare(base, base, bad)
    with pytest.raises(ConfigError, match="confidence"):
        compare(base, base, 10.0, confidence=1.5)
    r = run_cli(tmp_path, base, base, "--threshold", "-5")
    assert r.exit_code == 2


# -- the markdown summary ----------------------------------------------------------------------

def test_markdown_summary_is_written(base, tmp_path):
    a = remeasure(base, sigma=0.1, seed=1)
    b = remeasure(base, sigma=0.1, seed=2, scale=1.3, only="fire_gen")
    md = tmp_path / "out" / "summary.md"
    r = run_cli(tmp_path, a, b, "--markdown", str(md))
    assert r.exit_code == 1, r.output
    text = md.read_text()
    assert text.startswith("## Latency comparison")
    assert ":x:" in text and "### Regressions" in text and "<details>" in text
    regressions = text.split("### Regressions")[1].split("<details>")[0]
    rows = [line for line in regressions.splitlines() if line.startswith("| phone")]
    assert len(rows) == 3 and all("fire\\_gen" in row and "**regression**" in row for row in rows)
    assert not list(md.parent.glob(".*.tmp"))  # written atomically: no temp file left behind


def test_markdown_escapes_profile_text(base):
    d = base.devices[1]
    odd = d.model_copy(update={"pipelines": [p.model_copy(update={"pipeline": "a|b<script>"}) for p in d.pipelines],
                               "artifacts": []})
    p = base.model_copy(update={"devices": [odd]})
    text = to_markdown(compare(p, p, 10.0), "base.json", "cur.json")
    assert "<script>" not in text and "a\\|b\\<script\\>" in text
    assert all(line.count(" | ") == 5 for line in text.splitlines() if line.startswith("| phone"))


def test_verdict_values_are_stable():
    assert [v.value for v in Verdict] == ["regression", "improvement", "within noise"]
