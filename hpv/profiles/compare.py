"""Compare two device profiles for CI: which configurations got slower beyond noise, which got faster,
and which were measured in one file only.

A configuration is the same artifact at the same batch size (or the same pipeline at the same
precision, steps, batch and resolution) on the same device and target. Each side's latency is
located by a quantile of its recorded samples, the lower quartile by default, with a
distribution-free confidence interval (order statistics of the binomial, so no resampling and no
seed: the same files always give the same verdict). Why the lower quartile and not the median: on
a shared machine, other work adds a right tail to the distribution that moves the median 10-30%
between two runs of the same build (measured on this project's 2-core machine), while the lower
quartile holds; a real slowdown, more work per call, moves the whole distribution, lower quartile
included. A configuration is a regression only when even the most favourable reading of the noise
leaves it slower by more than the threshold:

    lower bound of current's quantile - upper bound of baseline's quantile > threshold% of baseline's quantile

and an improvement in the mirror case. Runtimes that only report aggregates (benchmark_model:
`samples_ms` empty) and runs too short for an interval fall back to p50 +- AGGREGATE_HALF_WIDTH, so
such a change must exceed the threshold by about twice that margin before it counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING

from hpv.errors import ConfigError, ProfileError

if TYPE_CHECKING:  # the schema pulls in pydantic; `hpv --help` should not
    from hpv.profiles.schema import DeviceProfile, LatencyStats, ProfileFile

DEFAULT_THRESHOLD_PCT = 10.0
DEFAULT_CONFIDENCE = 0.95
DEFAULT_QUANTILE = 0.25  # the lower quartile: see the module's docstring
# Half-width of the interval given to a latency known only as p50 (no samples), relative to p50.
AGGREGATE_HALF_WIDTH = 0.05


class Method(str, Enum):
    """How an estimate's interval was obtained."""

    ORDER_STATISTIC = "order-statistic"  # from samples_ms
    ROUNDS = "rounds"  # from the quantile of each round of samples_ms: time-correlated noise included
    AGGREGATE = "aggregate"  # p50 only (no or too few samples): p50 +- AGGREGATE_HALF_WIDTH


class Verdict(str, Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "within noise"


@dataclass(frozen=True)
class Estimate:
    """Where a latency lies (per call, ms: the quantile compared, the lower quartile by default; the
    field keeps its old name) and its confidence interval."""

    median_ms: float
    lo_ms: float
    hi_ms: float
    runs: int
    method: Method


@dataclass(frozen=True)
class Config:
    """One measured configuration: an artifact or a pipeline on one device and target."""

    kind: str  # "artifact" or "pipeline"
    device: str
    target: str
    key: tuple
    label: str

    @property
    def match_key(self) -> tuple:
        return (self.kind, self.device, self.target, *self.key)

    @property
    def where(self) -> str:
        return f"{self.device} ({self.target})"


@dataclass(frozen=True)
class ConfigComparison:
    config: Config
    baseline: Estimate
    current: Estimate
    verdict: Verdict
    ratio: tuple[float, float, float] | None = None  # paired rounds: current / baseline and its interval

    @property
    def change_pct(self) -> float:
        """Change in % of the baseline (paired: the median round-by-round ratio; nan when the
        baseline is 0)."""
        if self.ratio is not None:
            return (self.ratio[0] - 1) * 100
        return _pct(self.current.median_ms - self.baseline.median_ms, self.baseline.median_ms)

    @property
    def slower_by_at_least_pct(self) -> float:
        """The figure a regression must push past the threshold: paired, the ratio's lower bound;
        else current's lower bound minus baseline's upper bound, in % of baseline (negative: the
        intervals overlap or it got faster)."""
        if self.ratio is not None:
            return (self.ratio[1] - 1) * 100
        return _pct(self.current.lo_ms - self.baseline.hi_ms, self.baseline.median_ms)

    @property
    def faster_by_at_least_pct(self) -> float:
        if self.ratio is not None:
            return (1 - self.ratio[2]) * 100
        return _pct(self.baseline.lo_ms - self.current.hi_ms, self.baseline.median_ms)


@dataclass(frozen=True)
class Comparison:
    threshold_pct: float
    confidence: float
    entries: tuple[ConfigComparison, ...]
    only_in_baseline: tuple[Config, ...]
    only_in_current: tuple[Config, ...]
    quantile: float = 0.5

    def _with(self, verdict: Verdict) -> tuple[ConfigComparison, ...]:
        return tuple(e for e in self.entries if e.verdict is verdict)

    @property
    def regressions(self) -> tuple[ConfigComparison, ...]:
        return self._with(Verdict.REGRESSION)

    @property
    def improvements(self) -> tuple[ConfigComparison, ...]:
        return self._with(Verdict.IMPROVEMENT)

    @property
    def unchanged(self) -> tuple[ConfigComparison, ...]:
        return self._with(Verdict.UNCHANGED)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def median_interval(samples: list[float], confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float] | None:
    """(median, lower, upper): a distribution-free interval holding the true median with probability
    at least `confidence`, made of two order statistics of the sorted samples. None when there are too
    few samples for any pair of them to reach that confidence (fewer than 6 at 95%)."""
    n = len(samples)
    alpha = 1.0 - confidence
    if n == 0 or 2.0 * 0.5 ** n > alpha:
        return None
    x = sorted(samples)
    # The largest j with P(Binomial(n, 1/2) <= j - 1) <= alpha/2, exactly in integers:
    # then [x_(j), x_(n-j+1)] covers the median with probability >= 1 - alpha.
    budget = Fraction(alpha) / 2 * 2 ** n
    tail, term, j = 0, 1, 0  # term = C(n, j)
    while j < n // 2:
        tail += term
        if tail > budget:
            break
        term = term * (n - j) // (j + 1)
        j += 1
    j = max(j, 1)
    mid = n // 2
    median = x[mid] if n % 2 else (x[mid - 1] + x[mid]) / 2
    return median, x[j - 1], x[n - j]


def quantile_interval(samples: list[float], q: float, confidence: float = DEFAULT_CONFIDENCE
                      ) -> tuple[float, float, float] | None:
    """(quantile, lower, upper): the q-quantile of the samples and two order statistics that hold the
    true q-quantile with probability at least `confidence` (Binomial(n, q) tails of at most
    (1 - confidence) / 2 each). None when the samples are too few for that."""
    if q == 0.5:
        return median_interval(samples, confidence)
    n = len(samples)
    if n == 0:
        return None
    x = sorted(samples)
    pmf = [math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(n + 1)]
    half = (1.0 - confidence) / 2
    lo_rank, tail = 0, 0.0  # the largest r with P(B <= r - 1) <= half: x_(r) is the lower bound
    while lo_rank < n and tail + pmf[lo_rank] <= half:
        tail += pmf[lo_rank]
        lo_rank += 1
    hi_rank, tail = n, 0.0  # the smallest s with P(B >= s) <= half: x_(s) is the upper bound
    while hi_rank > 0 and tail + pmf[hi_rank] <= half:
        tail += pmf[hi_rank]
        hi_rank -= 1
    if lo_rank < 1 or hi_rank + 1 > n:
        return None
    point = x[min(n - 1, int(q * (n - 1) + 0.5))]
    return point, x[lo_rank - 1], x[hi_rank]


def round_quantiles(latency: LatencyStats, quantile: float) -> list[float]:
    """The `quantile` of each round's block of samples (`latency.rounds` equal consecutive blocks)."""
    size = len(latency.samples_ms) // latency.rounds
    blocks = [sorted(latency.samples_ms[i * size:(i + 1) * size]) for i in range(latency.rounds)]
    return [blk[min(size - 1, int(quantile * (size - 1) + 0.5))] for blk in blocks]


def estimate(latency: LatencyStats, confidence: float = DEFAULT_CONFIDENCE, quantile: float = 0.5) -> Estimate:
    """Where a latency distribution lies (its `quantile`) and an interval for that.

    With rounds (blocks of samples each timed after a fresh load, at another moment), each round's
    quantile is one observation and the interval is on their median: runs within a round share the
    machine's state of that moment, so treating them as independent would understate the noise
    (on this project's machine, round medians of one profile spread by +-25%)."""
    if latency.rounds and latency.samples_ms:
        interval = median_interval(round_quantiles(latency, quantile), confidence)
        if interval is not None:
            point, lo, hi = interval
            return Estimate(point, lo, hi, latency.runs, Method.ROUNDS)
    interval = quantile_interval(latency.samples_ms, quantile, confidence)
    if interval is not None:
        median, lo, hi = interval
        return Estimate(median, lo, hi, latency.runs, Method.ORDER_STATISTIC)
    p50 = latency.p50_ms
    return Estimate(p50, p50 * (1 - AGGREGATE_HALF_WIDTH), p50 * (1 + AGGREGATE_HALF_WIDTH), latency.runs,
                    Method.AGGREGATE)


def compare(baseline: ProfileFile, current: ProfileFile, threshold_pct: float = DEFAULT_THRESHOLD_PCT, *,
            confidence: float = DEFAULT_CONFIDENCE, quantile: float = DEFAULT_QUANTILE,
            across_devices: bool = False) -> Comparison:
    """Match the configurations of two profiles and judge each common one: regression, improvement,
    or within noise (see the module's docstring for the rule). Raises ProfileError when the two have
    no configuration in common, or when one file lists a configuration twice. across_devices:
    match configurations whatever the device ids (two machines; each profile may then hold one
    device per target)."""
    if not (math.isfinite(threshold_pct) and threshold_pct >= 0):
        raise ConfigError(f"threshold must be a percentage >= 0, got {threshold_pct}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    if not 0 < quantile < 1:
        raise ConfigError(f"quantile must be between 0 and 1 (e.g. 0.25), got {quantile}")
    base = _by_key(baseline, "baseline", across_devices)
    cur = _by_key(current, "current", across_devices)
    # Paired runs measure artifacts in the same rounds (pipelines are timed build after build).
    b_pairs, c_pairs = _pairings(baseline), _pairings(current)
    paired = {k for k, pairing in b_pairs.items() if c_pairs.get(k) == pairing}  # the same paired run
    entries = []
    for k, (config, b_lat) in base.items():
        if k not in cur:
            continue
        c_lat = cur[k][1]
        b, c = estimate(b_lat, confidence, quantile), estimate(c_lat, confidence, quantile)
        ratio = paired_ratio(b_lat, c_lat, confidence, quantile) \
            if config.kind == "artifact" and (config.device, config.target) in paired else None
        verdict = _verdict(b, c, threshold_pct) if ratio is None else _ratio_verdict(ratio, threshold_pct)
        entries.append(ConfigComparison(config, b, c, verdict, ratio))
    if not entries:
        hint = "" if across_devices else (
            "; to compare two machines' profiles anyway, pass --across-devices (a slower machine then "
            "reads as a regression), or profile this machine twice and compare those")
        raise ProfileError(
            "the two profiles have no configuration in common (same device id, target, artifact or "
            f"pipeline, batch): baseline has {_devices(baseline)}; current has {_devices(current)}{hint}")
    return Comparison(
        threshold_pct=threshold_pct, confidence=confidence, entries=tuple(entries),
        only_in_baseline=tuple(c for k, (c, _) in base.items() if k not in cur),
        only_in_current=tuple(c for k, (c, _) in cur.items() if k not in base), quantile=quantile)


def _pairings(profile: ProfileFile) -> dict[tuple[str, str], str]:
    """(device, target) -> pairing id, for the entries measured in paired rounds."""
    return {(d.device.id, d.target): d.pairing for d in profile.devices if d.pairing}


def paired_ratio(b: LatencyStats, c: LatencyStats, confidence: float = DEFAULT_CONFIDENCE,
                 quantile: float = DEFAULT_QUANTILE) -> tuple[float, float, float] | None:
    """Current / baseline, round by round, for two latencies measured in the same rounds: (median
    ratio, lower, upper) with an order-statistic interval over the rounds. The machine's drift
    from round to round is common to both and cancels. None when the rounds do not line up."""
    if not (b.rounds and b.rounds == c.rounds and b.samples_ms and c.samples_ms):
        return None
    ratios = [cv / bv for bv, cv in zip(round_quantiles(b, quantile), round_quantiles(c, quantile)) if bv > 0]
    return median_interval(ratios, confidence) if len(ratios) == b.rounds else None


def _ratio_verdict(ratio: tuple[float, float, float], threshold_pct: float) -> Verdict:
    _, lo, hi = ratio
    if lo - 1 > threshold_pct / 100:
        return Verdict.REGRESSION
    if 1 - hi > threshold_pct / 100:
        return Verdict.IMPROVEMENT
    return Verdict.UNCHANGED


def _verdict(b: Estimate, c: Estimate, threshold_pct: float) -> Verdict:
    margin = threshold_pct / 100 * b.median_ms
    if c.lo_ms - b.hi_ms > margin:
        return Verdict.REGRESSION
    if b.lo_ms - c.hi_ms > margin:
        return Verdict.IMPROVEMENT
    return Verdict.UNCHANGED


def configs(device: DeviceProfile) -> Iterable[tuple[Config, LatencyStats]]:
    """Every configuration of one device's profile with its latency per call."""
    dev, target = device.device.id, device.target
    for a in device.artifacts:
        yield Config("artifact", dev, target, (a.artifact, a.batch), f"{a.artifact} b{a.batch}"), a.latency
    for p in device.pipelines:
        key = (p.pipeline, p.precision, p.steps, p.batch, p.resolution, p.parts)
        label = f"{p.pipeline} {p.precision} k={p.steps} b{p.batch} {p.resolution}px{p.parts_tag}"
        yield Config("pipeline", dev, target, key, label), p.latency


def _by_key(profile: ProfileFile, which: str, across_devices: bool = False) -> dict[tuple, tuple[Config, LatencyStats]]:
    out: dict[tuple, tuple[Config, LatencyStats]] = {}
    for d in profile.devices:
        for config, lat in configs(d):
            key = (config.kind, config.target, *config.key) if across_devices else config.match_key
            if key in out:
                twice = (f"on two devices ({out[key][0].device}, {config.device}); across devices a profile "
                         "may hold one device per target" if out[key][0].device != config.device
                         else f"on {config.where} twice; keep one measurement per configuration")
                raise ProfileError(f"the {which} profile lists {config.label} {twice}")
            out[key] = (config, _checked(lat, config, which))
    return out


def _checked(latency: LatencyStats, config: Config, which: str) -> LatencyStats:
    """The schema's checks once more: a profile changed in memory (`model_copy(update=...)`) skipped
    them, and a NaN or negative sample would turn a slowdown into 'within noise' or 'faster'."""
    from pydantic import ValidationError

    try:
        return type(latency).model_validate(latency.model_dump())
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(["latency", *map(str, err["loc"])])
        raise ProfileError(f"the {which} profile: {config.label} on {config.where}: {field}: {err['msg']} "
                           f"(got {err.get('input')!r})") from None


def _devices(profile: ProfileFile) -> str:
    return ", ".join(f"{d.device.id} ({d.target})" for d in profile.devices) or "no devices"


def _pct(delta: float, base: float) -> float:
    if base > 0:
        return 100.0 * delta / base
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


# -- presentation ------------------------------------------------------------------------------

def format_pct(pct: float) -> str:
    return "n/a" if math.isnan(pct) else f"{pct:+.1f}%"


def format_ms(ms: float) -> str:
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def quantile_name(q: float) -> str:
    """What a quantile is called in a sentence: 'lower quartile (q25)', 'median', 'q90'."""
    named = {0.25: "lower quartile (q25)", 0.5: "median", 0.75: "upper quartile (q75)"}
    return named.get(q, f"q{q * 100:g}")


def quantile_short(q: float) -> str:
    return "median" if q == 0.5 else f"q{q * 100:g}"


def format_estimate(e: Estimate) -> str:
    return f"{format_ms(e.median_ms)} [{format_ms(e.lo_ms)}, {format_ms(e.hi_ms)}]"


def summary_line(comparison: Comparison) -> str:
    c = comparison
    parts = [f"{len(c.regressions)} regression{'s' * (len(c.regressions) != 1)}",
             f"{len(c.improvements)} improvement{'s' * (len(c.improvements) != 1)}",
             f"{len(c.unchanged)} within noise"]
    extra = ""
    if c.only_in_baseline or c.only_in_current:
        extra = f"; {len(c.only_in_baseline)} only in baseline, {len(c.only_in_current)} only in current"
    return (f"{', '.join(parts)} of {len(c.entries)} configurations compared "
            f"(threshold {c.threshold_pct:g}% beyond the {c.confidence:.0%} intervals of the "
            f"{quantile_short(c.quantile)} latencies){extra}")


def method_note(comparison: Comparison) -> str | None:
    """A sentence on the configurations judged from p50 alone, or None when every one had samples."""
    n = sum(Method.AGGREGATE in (e.baseline.method, e.current.method) for e in comparison.entries)
    if not n:
        return None
    return (f"{n} configuration{'s' * (n != 1)} had no per-run samples (or too few): they are read as "
            f"their p50 +- {AGGREGATE_HALF_WIDTH:.0%}, so they need a change of about "
            f"{comparison.threshold_pct + 200 * AGGREGATE_HALF_WIDTH:g}% to count.")


def grouped(configs_: Iterable[Config]) -> dict[str, list[str]]:
    """Labels of configurations grouped by device and target, for the 'only in one file' lists."""
    out: dict[str, list[str]] = {}
    for c in configs_:
        out.setdefault(c.where, []).append(c.label)
    return out


def to_markdown(comparison: Comparison, baseline_name: str = "baseline", current_name: str = "current") -> str:
    """A GitHub-flavoured summary (for $GITHUB_STEP_SUMMARY): verdict, the changed configurations,
    every configuration in a collapsed table, and what only one file measured."""
    c = comparison
    icon = ":x:" if c.regressions else ":white_check_mark:"
    lines = ["## Latency comparison", "",
             f"{icon} **{_md(summary_line(c))}**", "",
             f"Baseline `{_code(baseline_name)}`, current `{_code(current_name)}`. {_md_method(c)}", ""]
    note = method_note(c)
    if note:
        lines += [f"> {_md(note)}", ""]
    for title, rows in (("Regressions", c.regressions), ("Improvements", c.improvements)):
        if rows:
            lines += [f"### {title}", "", *_md_table(rows), ""]
    lines += ["<details><summary>All compared configurations</summary>", "", *_md_table(c.entries), "",
              "</details>", ""]
    for title, only in (("Only in baseline", c.only_in_baseline), ("Only in current", c.only_in_current)):
        if only:
            lines += [f"<details><summary>{title} ({len(only)}, not compared)</summary>", ""]
            lines += [f"- {_md(where)}: {_md(', '.join(labels))}" for where, labels in grouped(only).items()]
            lines += ["", "</details>", ""]
    return "\n".join(lines)


def _md_method(c: Comparison) -> str:
    """What the figures are and when a configuration counts as a regression, as computed."""
    q, short = quantile_name(c.quantile), quantile_short(c.quantile)
    text = (f"Latency per call in ms: each configuration's {q} with its {c.confidence:.0%} interval "
            f"(for one timed in rounds, the median of its rounds' {short}s).")
    unpaired = [e for e in c.entries if e.ratio is None]
    if unpaired:
        text += (f" A regression is slower by more than {c.threshold_pct:g}% of the baseline's {short} even "
                 "between the intervals' near ends.")
    if len(unpaired) < len(c.entries):
        who = "Configurations measured in the same rounds are" if unpaired else \
            "Every configuration was measured in the same rounds and is"
        text += (f" {who} judged by the round-by-round ratio of the {short}s (the change column): a "
                 f"regression when its interval's low end exceeds {1 + c.threshold_pct / 100:g}.")
    return text


def _md_table(rows: Iterable[ConfigComparison]) -> list[str]:
    out = ["| device | configuration (b: batch) | baseline ms [CI] | current ms [CI] | change | verdict |",
           "|---|---|--:|--:|--:|---|"]
    for e in rows:
        verdict = f"**{e.verdict.value}**" if e.verdict is Verdict.REGRESSION else e.verdict.value
        out.append(f"| {_md(e.config.where)} | {_md(e.config.label)} | {format_estimate(e.baseline)} | "
                   f"{format_estimate(e.current)} | {format_pct(e.change_pct)} | {verdict} |")
    return out


def _md(text: str) -> str:
    """Text from a profile, safe inside a GitHub markdown table cell (no HTML, no column breaks)."""
    for ch in "\\|*_`[]<>":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _code(text: str) -> str:
    return text.replace("`", "'").replace("\n", " ")
