"""`hpv report`: one self-contained HTML page per device profile. Plots are inline SVG drawn here
(no JavaScript, no fonts or scripts fetched), so the page opens offline and can be attached to a CI
run as a single file.

Per device: latency against expected quality of every pipeline configuration with the Pareto front
marked, per-frame latency against batch size, per-frame p50/p90 against refinement steps k, and
tables of the artifacts and pipelines. Every string taken from the profile is HTML-escaped.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpv.profiles.schema import ArtifactProfile, DeviceProfile, PipelineProfile, ProfileFile

# Okabe-Ito: tells apart for colour-blind readers; its yellow is left out (unreadable on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
FRONT_COLOUR = "#222222"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower x (latency) and higher y (quality) are
    better; a point is dominated by one at least as good in both and better in one. Sorted by x.
    Identical points are all kept; points with a NaN are never on the front."""
    valid = [i for i, (x, y) in enumerate(points) if not (math.isnan(x) or math.isnan(y))]
    order = sorted(valid, key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
        elif front and points[i] == points[front[-1]]:
            front.append(i)
    return front


def pipeline_front(pipelines: Sequence[PipelineProfile]) -> list[PipelineProfile]:
    """The pipeline configurations on the latency (per-frame p90) / expected PSNR front."""
    rated = [p for p in pipelines if p.quality is not None]
    return [rated[i] for i in pareto_front([(p.per_frame_p90_ms, p.quality.expected_psnr_db) for p in rated])]


def render_report(profile: ProfileFile, *, source: str | None = None) -> str:
    """The whole page, as a string."""
    precisions = sorted({a.precision for d in profile.devices for a in d.artifacts}
                        | {p.precision for d in profile.devices for p in d.pipelines})
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(precisions)}
    title = "Device profile" + (f": {source}" if source else "")
    body = [f"<header><h1>{_e(title)}</h1><p class=\"meta\">written by {_e(profile.generator)}, "
            f"schema version {profile.schema_version}, {len(profile.devices)} "
            f"device{'s' * (len(profile.devices) != 1)}</p>"]
    if profile.devices:
        body.append("<nav><ul>" + "".join(
            f"<li><a href=\"#device-{i}\">{_e(d.device.id)} <span class=\"dim\">({_e(d.target)})</span></a></li>"
            for i, d in enumerate(profile.devices)) + "</ul></nav>")
    else:
        body.append("<p class=\"note\">This profile holds no devices.</p>")
    body.append("</header>")
    body += [_device_section(i, d, colours) for i, d in enumerate(profile.devices)]
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(profile: ProfileFile, path: str | Path, *, source: str | None = None) -> Path:
    from hpv.atomic import write_text

    return write_text(Path(path), render_report(profile, source=source))


# -- one device --------------------------------------------------------------------------------

def _device_section(i: int, d: DeviceProfile, colours: dict[str, str]) -> str:
    dev = d.device
    facts = [("model", dev.model), ("SoC", dev.soc), ("OS", dev.os), ("CPU", dev.cpu), ("kind", dev.kind),
             ("target", d.target), ("threads", d.threads), ("measured", d.measured_at),
             ("peak GMAC/s", _num(dev.peak_gmacs)), ("manifest", d.manifest_sha256[:12]),
             ("runtimes", ", ".join(f"{k} {v}" for k, v in runtimes_used(d).items()) or None)]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v is not None)
    pid = f"device-{i}"
    plots = [_pareto_plot(f"{pid}-pareto", d, colours), _steps_plot(f"{pid}-steps", d, colours),
             *_batch_plots(f"{pid}-batch", d)]
    return (f"<section class=\"device\" id=\"{pid}\">\n"
            f"<h2>{_e(dev.id)} <span class=\"dim\">{_e(d.target)}</span></h2>\n"
            f"<dl class=\"facts\">{dl}</dl>\n<div class=\"plots\">\n" + "\n".join(plots) + "\n</div>\n"
            f"<h3>Artifacts</h3>\n{_artifact_table(d.artifacts)}\n"
            f"<h3>Pipelines</h3>\n{_pipeline_table(d.pipelines)}\n</section>")


# Which runtime packages run which artifact format. A profiler records every runtime installed; the
# page lists those of the formats this device's profile measured (and any it cannot attribute).
RUNTIMES_BY_FORMAT = {
    "onnx": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-web"),
    "tflite": ("ai-edge-litert", "benchmark_model", "tflite-runtime", "tensorflow"),
    "coreml": ("coremltools", "coreml"),
}


def runtimes_used(d: DeviceProfile) -> dict[str, str]:
    formats = {a.format for a in d.artifacts}
    claimed = {name: fmt for fmt, names in RUNTIMES_BY_FORMAT.items() for name in names}
    return {k: v for k, v in d.device.runtimes.items() if claimed.get(k) in formats or k not in claimed}


def _pareto_plot(pid: str, d: DeviceProfile, colours: dict[str, str]) -> str:
    title = "Latency against quality"
    rated = [p for p in d.pipelines if p.quality is not None
             and math.isfinite(p.per_frame_p90_ms) and math.isfinite(p.quality.expected_psnr_db)]
    if not rated:
        why = "no pipeline configurations measured" if not d.pipelines else "no pipeline has a quality figure"
        return _empty_figure(pid, "pareto", title, why)
    pts = [(p.per_frame_p90_ms, p.quality.expected_psnr_db) for p in rated]
    front = pareto_front(pts)
    chart = _Chart(pid, "pareto", title, "per-frame p90 latency (ms)", "expected PSNR (dB)",
                   x_domain=_domain([x for x, _ in pts], zero=True), y_domain=_domain([y for _, y in pts]))
    label = _labeller(rated, ("pipeline", "precision", "batch", "resolution"))
    name = lambda p: " ".join(filter(None, (f"k={p.steps}{p.parts_tag}", label(p))))  # noqa: E731
    chart.line([pts[i] for i in front], FRONT_COLOUR, cls="pareto-line", width=1.5)
    on_front = set(front)
    for j, (p, (x, y)) in enumerate(zip(rated, pts)):
        tip = f"{name(p)}: p90 {x:.3g} ms/frame, expected PSNR {y:.2f} dB"
        chart.point(x, y, colours[p.precision], tip, front=j in on_front)
    # One label per place on the front (identical configurations share one): their names where every
    # one fits without touching another label or point; else numbers, named in a key below the plot.
    places: dict[tuple[float, float], list[int]] = {}
    for i in front:
        places.setdefault(pts[i], []).append(i)
    taken, labels = list(chart.taken), list(chart.labels)
    if not all(chart.text(*xy, " / ".join(name(rated[i]) for i in ids)) for xy, ids in places.items()):
        chart.taken, chart.labels = taken, labels
        numbered = {xy: list(range(n + 1, n + 1 + len(ids)))
                    for xy, ids, n in zip(places, places.values(),
                                          itertools.accumulate([0, *map(len, places.values())]))}
        for xy, numbers in numbered.items():
            chart.text(*xy, "/".join(map(str, numbers)))
        key = [(n, f"{name(rated[i])}: p90 {pts[i][0]:.3g} ms/frame, {pts[i][1]:.2f} dB")
               for xy, ids in places.items() for n, i in zip(numbered[xy], ids)]
    else:
        key = []
    legend = [(colours[p], p, False) for p in sorted({p.precision for p in rated})]
    legend.append((FRONT_COLOUR, "Pareto front (nothing both faster and better)", False))
    return chart.figure(legend, caption=f"{len(rated)} configurations, {len(front)} on the front; "
                                        "up and left is better", key=key)


def _steps_plot(pid: str, d: DeviceProfile, colours: dict[str, str]) -> str:
    title = "Per-frame latency against refinement steps"
    if not d.pipelines:
        return _empty_figure(pid, "steps", title, "no pipeline configurations measured")
    # At the smallest batch only: the batch plot shows the rest, and one colour per precision stays true.
    batch = min(p.batch for p in d.pipelines)
    pipes = [p for p in d.pipelines if p.batch == batch]
    groups: dict[tuple, list[PipelineProfile]] = {}
    for p in pipes:
        groups.setdefault((p.pipeline, p.precision, p.batch, p.resolution, p.parts), []).append(p)
    ys = [v for p in pipes for v in (p.latency.p50_ms / p.batch, p.per_frame_p90_ms)]
    chart = _Chart(pid, "steps", title, "refinement steps k", "per-frame latency (ms)",
                   x_domain=_domain([p.steps for p in pipes], integer=True), y_domain=_domain(ys, zero=True),
                   x_integer=True)
    label = _labeller(pipes, ("pipeline", "precision", "resolution"))
    legend = []
    for n, (key, ps) in enumerate(groups.items()):
        ps = sorted(ps, key=lambda p: p.steps)
        colour = colours[key[1]] if len(groups) == len({k[1] for k in groups}) else PALETTE[n % len(PALETTE)]
        name = (label(ps[0]) or key[1]) + ps[0].parts_tag
        for stat, dash in (("p50", False), ("p90", True)):
            xy = [(p.steps, (p.latency.p50_ms if stat == "p50" else p.latency.p90_ms) / p.batch) for p in ps]
            chart.line(xy, colour, dash=dash)
            for p, (x, y) in zip(ps, xy):
                chart.point(x, y, colour, f"{name} k={p.steps}: {stat} {y:.3g} ms/frame", hollow=dash)
        legend.append((colour, name, False))
    legend += [("#666666", "p50 (solid)", False), ("#666666", "p90 (dashed, hollow)", True)]
    others = sorted({p.batch for p in d.pipelines} - {batch})
    return chart.figure(legend, caption=f"batch {batch}" + (" (larger batches: see batch size)" if others else ""))


def _batch_plots(pid: str, d: DeviceProfile) -> list[str]:
    """One plot per kind (artifacts, pipelines) that has a configuration measured at several batch
    sizes; a note when none has."""
    title = "Per-frame latency against batch size"
    formats = len({a.format for a in d.artifacts}) > 1

    def artifact_name(a: ArtifactProfile) -> str:
        return f"{a.stage} {a.precision}" + (f" {a.format}" if formats else "")

    def pipeline_name(p: PipelineProfile) -> str:
        return f"{p.pipeline} {p.precision} k={p.steps} {p.resolution}px{p.parts_tag}"

    kinds = [("artifacts", d.artifacts, lambda a: (a.stage, a.precision, a.format), artifact_name),
             ("pipelines", d.pipelines, lambda p: (p.pipeline, p.precision, p.steps, p.resolution, p.parts),
              pipeline_name)]
    out = []
    for kind, items, key, name in kinds:
        groups: dict[tuple, list] = {}
        for it in items:
            groups.setdefault(key(it), []).append(it)
        series = {k: sorted(v, key=lambda it: it.batch) for k, v in groups.items() if len({it.batch for it in v}) > 1}
        if not series:
            continue
        batches = sorted({it.batch for v in series.values() for it in v})
        ys = [it.latency.p50_ms / it.batch for v in series.values() for it in v]
        chart = _Chart(f"{pid}-{kind}", f"batch batch-{kind}", f"{title}: {kind}", "batch size (log scale)",
                       "per-frame p50 latency (ms)", x_domain=(batches[0], batches[-1]),
                       y_domain=_domain(ys, zero=True), x_log_ticks=batches)
        legend = []
        for n, (k, v) in enumerate(series.items()):
            colour = PALETTE[n % len(PALETTE)]
            xy = [(it.batch, it.latency.p50_ms / it.batch) for it in v]
            chart.line(xy, colour)
            for it, (x, y) in zip(v, xy):
                chart.point(x, y, colour, f"{name(it)} batch {it.batch}: p50 {y:.3g} ms/frame")
            legend.append((colour, name(v[0]), False))
        out.append(chart.figure(legend))
    if not out:
        batches = sorted({it.batch for it in [*d.artifacts, *d.pipelines]})
        what = f" (batch {', '.join(map(str, batches))})" if batches else ""
        out.append(_empty_figure(f"{pid}-single", "batch", title,
                                 f"single batch size measured{what}: profile with several, e.g. "
                                 "`hpv profile BUILD --batch 1 --batch 2 --batch 4`, to fill this plot"))
    return out


LOAD_NOTE = ("load: from the file to a session ready to run (parsing, the runtime's graph optimizations, "
             "kernel and memory set-up; with a GPU or NPU delegate, compiling for it): paid once when an "
             "app opens the model, not per frame; first: the first call after loading")


def _artifact_table(arts: Sequence[ArtifactProfile]) -> str:
    if not arts:
        return "<p class=\"note\">No artifacts measured.</p>"
    head = ["artifact", "stage", "format", "precision", "delegate nodes", "batch", "load ms", "first ms", "p50 ms",
            "p90 ms", "p99 ms", "p50 ms/frame", "memory MB", "GMAC/s", "roofline", "verification dB"]
    rows = []
    for a in arts:
        lat = a.latency
        rows.append([a.artifact, a.stage, a.format, a.precision, _delegate(a), a.batch, _num(a.load_ms),
                     _num(a.first_ms), _num(lat.p50_ms), _num(lat.p90_ms), _num(lat.p99_ms), _num(a.per_frame_p50_ms),
                     _num(a.peak_memory_mb), _num(a.achieved_gmacs),
                     _roofline(a.roofline_fraction),
                     _num(a.verification_psnr_db)])
    head, rows, same = _fold_constant(head, rows, ("format", "delegate nodes", "batch"))
    return _table("artifacts", head, rows, numeric=_numeric(head, "batch" if "batch" in head else "load ms"),
                  note="; ".join([*same, "latency per call (a whole batch)", LOAD_NOTE, _runs(arts)]),
                  titles={"load ms": LOAD_NOTE})


def _pipeline_table(pipes: Sequence[PipelineProfile]) -> str:
    if not pipes:
        return "<p class=\"note\">No pipeline configurations measured.</p>"
    front = {id(p) for p in pipeline_front(pipes)}
    head = ["pipeline", "generator", "precision", "parts", "k", "batch", "resolution", "p50 ms/frame",
            "p90 ms/frame", "p99 ms/call", "expected PSNR dB", "PSNR dB (PyTorch)", "artifact PSNR dB", "Pareto",
            "quality source"]
    rows = []
    drawn = any(p.parts for p in pipes)  # else the column is empty and goes
    for p in sorted(pipes, key=lambda p: (p.pipeline, p.precision, p.batch, p.resolution, p.steps, not p.parts)):
        q = p.quality
        rows.append([p.pipeline, p.generator, p.precision, ("off", "on")[p.parts] if drawn else None, p.steps,
                     p.batch, p.resolution,
                     _num(p.latency.p50_ms / p.batch), _num(p.per_frame_p90_ms), _num(p.latency.p99_ms),
                     _num(q and q.expected_psnr_db), _num(q and q.psnr_db), _num(q and q.artifact_psnr_db),
                     "on front" if id(p) in front else "", q.source if q else None])
    head, rows, same = _fold_constant(head, rows, ("pipeline", "generator", "parts", "batch", "resolution",
                                                   "quality source"))
    return _table("pipelines", head, rows, numeric=_numeric(head, "k", until="artifact PSNR dB"),
                  note="; ".join([*same, _runs(pipes)]), wrap={"quality source"})


def _fold_constant(head: list[str], rows: list[list], names: tuple[str, ...]) -> tuple[list[str], list[list], list[str]]:
    """The columns among `names` that hold one value in every row (of several) leave the table and
    become 'name: value' for its caption: the table stays narrow enough not to scroll sideways."""
    if len(rows) < 2:
        return head, rows, []
    drop = [j for j, h in enumerate(head) if h in names and len({repr(r[j]) for r in rows}) == 1]
    same = [f"{head[j]} {rows[0][j]}" for j in drop if rows[0][j] is not None]  # an empty column just goes
    keep = [j for j in range(len(head)) if j not in drop]
    return [head[j] for j in keep], [[r[j] for j in keep] for r in rows], [f"every row: {', '.join(same)}"] if same else []


def _numeric(head: list[str], first: str, until: str | None = None) -> range:
    """The columns from `first` (to `until`, inclusive) are right-aligned figures."""
    return range(head.index(first), (head.index(until) + 1) if until else len(head))


def _roofline(fraction: float | None) -> str | None:
    """A fraction of the device's peak; above 100% the peak itself was measured too low."""
    if fraction is None:
        return None
    return f"{fraction:.1%}" if fraction <= 1.0 else f"{fraction:.0%}: peak measured too low"


def _delegate(a: ArtifactProfile) -> str | None:
    dg = a.delegate
    if dg is None:
        return None
    nodes = f" {dg.nodes_delegated}/{dg.nodes_total}" if dg.nodes_delegated is not None and dg.nodes_total else (
        f" {dg.nodes_delegated}" if dg.nodes_delegated is not None else "")
    parts = f", {dg.partitions} partition{'s' * (dg.partitions != 1)}" if dg.partitions is not None else ""
    return f"{dg.name}{nodes}{parts}"


def _runs(items) -> str:
    runs = sorted({it.latency.runs for it in items})
    return f"{runs[0]}{'–' + str(runs[-1]) if len(runs) > 1 else ''} timed runs each"


def _table(cls: str, head: list[str], rows: list[list], *, numeric: range, note: str = "",
           titles: dict[str, str] | None = None, wrap: set[str] = frozenset()) -> str:
    titles = titles or {}

    def attrs(j: int, header: bool = False) -> str:
        cls_ = " ".join(c for c, on in (("num", j in numeric), ("wrap", head[j] in wrap)) if on)
        tip = f' title="{_e(titles[head[j]])}"' if header and head[j] in titles else ""
        return (f' class="{cls_}"' if cls_ else "") + tip

    th = "".join(f"<th{attrs(j, True)}>{_e(h)}</th>" for j, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{attrs(j)}>{_e('—' if v is None else v)}</td>"
                                    for j, v in enumerate(r)) + "</tr>\n" for r in rows)
    caption = f"<caption>{_e(note)}</caption>" if note else ""
    return (f"<div class=\"table-wrap\"><table class=\"{cls}\">{caption}<thead><tr>{th}</tr></thead>\n"
            f"<tbody>{body}</tbody></table></div>")


# -- SVG charts --------------------------------------------------------------------------------

W, H = 560, 340
LEFT, RIGHT, TOP, BOTTOM = 62, 18, 16, 50
# A point label's box: 11px text, a character at most ~0.62 em wide (DejaVu Sans, the widest usual
# fallback; system-ui fonts are narrower), and a margin so that neighbouring labels never touch.
CHAR_W, LABEL_H, LABEL_PAD = 6.9, 11.0, 2.0


@dataclass
class _Chart:
    """One x/y chart as an SVG string: axes with ticks and labels, grid, lines, points with tooltips."""

    pid: str
    kind: str
    title: str
    x_label: str
    y_label: str
    x_domain: tuple[float, float]
    y_domain: tuple[float, float]
    x_integer: bool = False
    x_log_ticks: Sequence[float] | None = None  # a log2 x axis with ticks at these values
    parts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    taken: list[tuple[float, float, float, float]] = field(default_factory=list)
    segments: list[tuple[float, float, float, float]] = field(default_factory=list)  # lines, in pixels
    n_points: int = 0

    def px(self, x: float) -> float:
        lo, hi = self.x_domain
        if self.x_log_ticks is not None:
            lo, hi, x = math.log2(lo), math.log2(hi), math.log2(x)
        pad = 16 if self.x_log_ticks is not None else 0  # keep end points off the axes
        return LEFT + pad + (x - lo) / (hi - lo or 1) * (W - LEFT - RIGHT - 2 * pad)

    def py(self, y: float) -> float:
        lo, hi = self.y_domain
        return H - BOTTOM - (y - lo) / (hi - lo or 1) * (H - TOP - BOTTOM)

    def line(self, xy: Sequence[tuple[float, float]], colour: str, *, dash: bool = False, cls: str = "series-line",
             width: float = 2) -> None:
        xy = [(x, y) for x, y in xy if math.isfinite(x) and math.isfinite(y)]
        if len(xy) < 2:
            return
        pts = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in xy)
        self.segments += [(self.px(a), self.py(b), self.px(c), self.py(d)) for (a, b), (c, d) in zip(xy, xy[1:])]
        extra = " stroke-dasharray=\"6 4\"" if dash else ""
        self.parts.append(f"<polyline class=\"{cls}\" points=\"{pts}\" fill=\"none\" stroke=\"{colour}\" "
                          f"stroke-width=\"{width}\"{extra}/>")

    def point(self, x: float, y: float, colour: str, tip: str, *, front: bool = False, hollow: bool = False) -> None:
        if not (math.isfinite(x) and math.isfinite(y)):
            return  # an infinite latency (a run that never finished) has no place on the axes
        self.n_points += 1
        r = 6 if front else 4
        self.taken.append((self.px(x) - r, self.py(y) - r, self.px(x) + r, self.py(y) + r))
        cls = "point pareto" if front else "point"
        style = (f"r=\"6\" fill=\"{colour}\" stroke=\"{FRONT_COLOUR}\" stroke-width=\"2\"" if front else
                 f"r=\"3.5\" fill=\"#ffffff\" stroke=\"{colour}\" stroke-width=\"1.5\"" if hollow else
                 f"r=\"4\" fill=\"{colour}\" fill-opacity=\"0.75\" stroke=\"#ffffff\" stroke-width=\"0.8\"")
        self.parts.append(f"<circle class=\"{cls}\" cx=\"{self.px(x):.1f}\" cy=\"{self.py(y):.1f}\" {style} "
                          f"data-x=\"{x:.6g}\" data-y=\"{y:.6g}\"><title>{_e(tip)}</title></circle>")

    def text(self, x: float, y: float, text: str) -> bool:
        """A label beside a point: the first of eight places around it (then eight further out)
        that overlaps no point and no earlier label (nor, where one is free, a line) and stays
        inside the plot or its empty top and right margins; none when all are taken (the point's tooltip still names it). Returns
        whether it was placed. Boxes are estimated on the wide side, with a margin, so that a wider
        fallback font does not make them touch."""
        px, py = self.px(x), self.py(y)
        w, h = CHAR_W * len(text) + 2 * LABEL_PAD, LABEL_H + 2 * LABEL_PAD
        # (anchor x offset, baseline offset, text-anchor): right, left, above, below, diagonals; twice.
        # The near ring just clears a front point's own circle (radius 6) with the margin.
        places = ((10, 4, "start"), (-10, 4, "end"), (0, -11, "middle"), (0, 20, "middle"),
                  (8, -9, "start"), (-8, -9, "end"), (8, 18, "start"), (-8, 18, "end"),
                  (22, 4, "start"), (-22, 4, "end"), (0, -23, "middle"), (0, 32, "middle"),
                  (16, -18, "start"), (-16, -18, "end"), (16, 27, "start"), (-16, 27, "end"))
        candidates = []
        for dx, dy, anchor in places:
            x0 = {"start": px + dx, "end": px + dx - w + 2 * LABEL_PAD, "middle": px - w / 2}[anchor] - LABEL_PAD
            box = (x0, py + dy - LABEL_H - LABEL_PAD + 2, x0 + w, py + dy + LABEL_PAD + 2)
            # Inside the plot, or in the empty margins above and to the right of it (not over ticks).
            inside = LEFT <= box[0] and box[2] <= W - 2 and 1 <= box[1] and box[3] <= H - BOTTOM
            if inside and not any(_overlap(box, other) for other in self.taken):
                candidates.append((any(_crosses(box, seg) for seg in self.segments), dx, dy, anchor, box))
        if not candidates:
            return False
        _, dx, dy, anchor, box = min(candidates, key=lambda c: c[0])  # stable: the first clear of lines
        self.taken.append(box)
        self.labels.append(f"<text class=\"point-label\" x=\"{px + dx:.1f}\" y=\"{py + dy:.1f}\" "
                           f"text-anchor=\"{anchor}\">{_e(text)}</text>")
        return True

    def svg(self) -> str:
        x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM
        out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{self.pid}\" class=\"chart chart-{self.kind}\" "
               f"viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" "
               f"aria-labelledby=\"{self.pid}-title\" data-points=\"{self.n_points}\">",
               f"<title id=\"{self.pid}-title\">{_e(self.title)}</title>",
               f"<rect class=\"plot-area\" x=\"{x0}\" y=\"{y0}\" width=\"{x1 - x0}\" height=\"{y1 - y0}\"/>"]
        xt = ([(v, f"{v:g}") for v in self.x_log_ticks] if self.x_log_ticks is not None
              else _ticks(*self.x_domain, integer=self.x_integer))
        out.append("<g class=\"axis x-axis\">")
        for v, s in xt:
            x = self.px(v)
            out.append(f"<line class=\"grid\" x1=\"{x:.1f}\" y1=\"{y0}\" x2=\"{x:.1f}\" y2=\"{y1}\"/>"
                       f"<line class=\"tick\" x1=\"{x:.1f}\" y1=\"{y1}\" x2=\"{x:.1f}\" y2=\"{y1 + 5}\"/>"
                       f"<text class=\"tick-label\" x=\"{x:.1f}\" y=\"{y1 + 18}\" text-anchor=\"middle\">{s}</text>")
        out.append(f"<line class=\"axis-line\" x1=\"{x0}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\"/>"
                   f"<text class=\"axis-label\" x=\"{(x0 + x1) / 2}\" y=\"{H - 10}\" text-anchor=\"middle\">"
                   f"{_e(self.x_label)}</text></g>")
        out.append("<g class=\"axis y-axis\">")
        for v, s in _ticks(*self.y_domain):
            y = self.py(v)
            out.append(f"<line class=\"grid\" x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\"/>"
                       f"<line class=\"tick\" x1=\"{x0 - 5}\" y1=\"{y:.1f}\" x2=\"{x0}\" y2=\"{y:.1f}\"/>"
                       f"<text class=\"tick-label\" x=\"{x0 - 8}\" y=\"{y + 4:.1f}\" text-anchor=\"end\">{s}</text>")
        out.append(f"<line class=\"axis-line\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\"/>"
                   f"<text class=\"axis-label\" transform=\"translate(16 {(y0 + y1) / 2}) rotate(-90)\" "
                   f"text-anchor=\"middle\">{_e(self.y_label)}</text></g>")
        out += ["<g class=\"data\">", *self.parts, *self.labels, "</g>", "</svg>"]
        return "\n".join(out)

    def figure(self, legend: list[tuple[str, str, bool]], caption: str = "",
               key: Sequence[tuple[int, str]] = ()) -> str:
        """The chart with its legend; `key`: (number, text) for points labelled by number."""
        dashed = ' stroke-dasharray="5 3"'
        items = "".join(
            f"<li><svg width=\"22\" height=\"10\" aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" x2=\"21\" y2=\"5\" "
            f"stroke=\"{c}\" stroke-width=\"3\"{dashed if dash else ''}/></svg>{_e(t)}</li>"
            for c, t, dash in legend)
        cap = f" <span class=\"dim\">{_e(caption)}</span>" if caption else ""
        key_list = ("<ol class=\"point-key\">" + "".join(f"<li value=\"{n}\">{_e(t)}</li>" for n, t in key)
                    + "</ol>") if key else ""
        return (f"<figure class=\"plot plot-{self.kind.split()[0]}\"><figcaption>{_e(self.title)}{cap}</figcaption>\n"
                f"{self.svg()}\n<ul class=\"legend\">{items}</ul>{key_list}</figure>")


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crosses(box: tuple[float, float, float, float], seg: tuple[float, float, float, float]) -> bool:
    """Whether a line segment passes through a box (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = seg
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for p, q in ((-dx, x0 - box[0]), (dx, box[2] - x0), (-dy, y0 - box[1]), (dy, box[3] - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def _empty_figure(pid: str, kind: str, title: str, why: str) -> str:
    return (f"<figure class=\"plot plot-{kind} empty\" id=\"{pid}\"><figcaption>{_e(title)}</figcaption>"
            f"<p class=\"note\">{_e(why)}</p></figure>")


def _domain(values: Sequence[float], *, zero: bool = False, integer: bool = False) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)] or [0.0]
    lo, hi = min(values), max(values)
    if zero:
        lo = min(lo, 0.0)
    span = hi - lo
    if integer:
        return (lo - 0.3, hi + 0.3) if span else (lo - 1, hi + 1)
    if span == 0:
        pad = abs(hi) * 0.1 or 1.0
        return (lo if zero else lo - pad), hi + pad
    return (lo if zero else lo - 0.08 * span), hi + 0.08 * span


def _ticks(lo: float, hi: float, *, integer: bool = False, target: int = 6) -> list[tuple[float, str]]:
    """Round tick values (1, 2 or 5 times a power of ten) inside [lo, hi], with their labels."""
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1, round(step))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first = math.ceil(lo / step - 1e-9)
    out = []
    v = first * step
    while v <= hi + 1e-9 * step:
        out.append((v, f"{v:.{decimals}f}"))
        v = (first + len(out)) * step
    return out


def _labeller(items, fields: tuple[str, ...]) -> Callable:
    """A short name per item made of only those fields that differ between the items."""
    varying = [f for f in fields if len({getattr(it, f) for it in items}) > 1]

    def label(it) -> str:
        parts = []
        for f in varying:
            v = getattr(it, f)
            parts.append(f"batch {v}" if f == "batch" else f"{v}px" if f == "resolution" else str(v))
        return " ".join(parts)

    return label


def _num(v: float | None) -> str | None:
    if v is None:
        return None
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _e(v) -> str:
    return html.escape(str(v), quote=True)


_CSS = """
:root { color-scheme: light; --fg: #1d2329; --dim: #66707a; --line: #d8dde2; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 20px 48px; background: var(--bg); color: var(--fg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0 0 8px; } h3 { font-size: 16px; margin: 24px 0 8px; }
.dim, .meta { color: var(--dim); font-weight: normal; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 18px; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
section.device { border-top: 2px solid var(--line); margin-top: 28px; padding-top: 20px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px; margin: 0 0 12px; }
dl.facts dt { color: var(--dim); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; }
figure.plot { margin: 0; padding: 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figure.plot svg.chart { width: 100%; height: auto; display: block; background: #fff; border-radius: 4px; }
svg .plot-area { fill: #ffffff; } svg .grid { stroke: #eceff2; } svg .tick, svg .axis-line { stroke: #8a949e; }
svg .tick-label { font-size: 11px; fill: var(--dim); } svg .axis-label { font-size: 12px; fill: var(--fg); }
svg .point-label { font-size: 11px; fill: var(--fg); paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg circle.point:hover { stroke: #000; stroke-width: 2; }
ul.legend { list-style: none; padding: 0; margin: 8px 0 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
ol.point-key { margin: 6px 0 0; padding-left: 2.2em; font-size: 12px; columns: 2; column-gap: 24px; }
.note { color: var(--dim); font-style: italic; }
figure.empty .note { margin: 24px 0; text-align: center; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
caption { caption-side: bottom; text-align: left; color: var(--dim); padding-top: 4px; font-size: 12px; }
th, td { padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; text-align: left; }
th { background: var(--panel); font-weight: 600; white-space: normal; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 12em; }
tbody tr:hover { background: #f0f4f8; }
@media print { .plots { grid-template-columns: 1fr 1fr; } }
"""
