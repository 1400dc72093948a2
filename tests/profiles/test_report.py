"""`hpv report`: the Pareto front, a self-contained and escaped page, and (in headless Chromium) plots
that really render."""

from __future__ import annotations

import html
import json
import math
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hpv.cli.report import report_command
from hpv.profiles.report import pareto_front, pipeline_front, render_report, write_report
from hpv.profiles.schema import DelegateRecord, ProfileFile, write_profile
from tests.profiles import factory

HOSTILE = '<script>alert("x")</script>&'


def rich_profile() -> ProfileFile:
    """Two devices: one with three precisions, several batch sizes, a delegate and a hostile name;
    one with a single batch size."""
    d = factory.device(f"pixel {HOSTILE}", precisions=("fp32", "int8", "fp16"))
    batched_arts = [factory.artifact(stage, ms * (1 + 0.6 * (b - 1)), batch=b)
                    for b in (2, 4, 8) for stage, ms in (("fire_gen", 6.0), ("refiner", 8.0))]
    batched_pipes = [factory.pipeline(k, (20 + 8 * k) * (0.6 + 0.4 / b), batch=b) for b in (2, 4) for k in range(5)]
    arts = [a.model_copy(update={"delegate": DelegateRecord(name="gpu", nodes_delegated=120, nodes_total=130,
                                                            partitions=2), "roofline_fraction": 0.12})
            for a in d.artifacts]
    d = d.model_copy(update={"artifacts": arts + batched_arts, "pipelines": d.pipelines + batched_pipes})
    return factory.profile(d, factory.device("phone-b"))


def n_points(device) -> tuple[int, int, int]:
    """Points in the Pareto, steps and batch plots of a device as rich_profile() builds it."""
    pipes = device.pipelines
    smallest = min(p.batch for p in pipes)
    steps = 2 * sum(p.batch == smallest for p in pipes)
    multi = lambda items, key: sum(len(v) for v in _groups(items, key).values() if len(v) > 1)  # noqa: E731
    batch = multi(device.artifacts, lambda a: (a.stage, a.precision)) + multi(
        pipes, lambda p: (p.pipeline, p.precision, p.steps, p.resolution))
    return len(pipes), steps, batch


def _groups(items, key):
    out = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


# -- the Pareto front --------------------------------------------------------------------------

@pytest.mark.parametrize("points, front", [
    ([], []),
    ([(5.0, 20.0)], [0]),
    ([(1, 1), (2, 2), (3, 1.5)], [0, 1]),  # slower and worse than (2, 2)
    ([(3, 3), (2, 2), (1, 1)], [2, 1, 0]),  # each faster one is worse: all on the front, by latency
    ([(1, 2), (1, 1)], [0]),  # same latency, lower quality: dominated
    ([(1, 2), (2, 2)], [0]),  # same quality, slower: dominated
    ([(1, 2), (1, 2), (3, 1)], [0, 1]),  # identical points are both kept
    ([(1, math.nan), (2, 1), (math.nan, 5)], [1]),  # NaN never on the front
])
def test_pareto_front_cases(points, front):
    assert pareto_front(points) == front


def test_pareto_front_matches_the_definition_on_random_points():
    rng = np.random.default_rng(3)
    for _ in range(50):
        pts = [tuple(p) for p in rng.integers(0, 8, size=(int(rng.integers(1, 30)), 2)).astype(float)]
        dominated = {i for i, (x, y) in enumerate(pts) for (u, v) in pts
                     if u <= x and v >= y and (u < x or v > y)}
        front = pareto_front(pts)
        assert set(front) == set(range(len(pts))) - dominated
        assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_pipeline_front_takes_the_fastest_at_each_quality():
    """fp32 from the factory: k=0 21.8 dB, k=1 24.3, k=2 24.4, k=3 24.4 (slower), k=4 24.3."""
    d = factory.device(max_steps=4)
    assert [p.steps for p in pipeline_front(d.pipelines)] == [0, 1, 2]
    unrated = [p.model_copy(update={"quality": None}) for p in d.pipelines]
    assert pipeline_front(unrated) == []


# -- the page ----------------------------------------------------------------------------------

def test_page_is_self_contained_and_escaped():
    page = render_report(rich_profile(), source=f"run {HOSTILE}.json")
    assert "<script" not in page and HOSTILE not in page
    assert html.escape(HOSTILE) in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=|@import|url\(", page)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}  # SVG namespace


def test_each_plot_has_an_id_a_title_axis_labels_ticks_and_its_points():
    profile = rich_profile()
    page = render_report(profile)
    svgs = re.findall(r"<svg xmlns=\S+ id=\"([^\"]+)\" class=\"chart chart-([\w -]+)\".*?</svg>", page, re.S)
    ids = [i for i, _ in svgs]
    assert ids == ["device-0-pareto", "device-0-steps", "device-0-batch-artifacts", "device-0-batch-pipelines",
                   "device-1-pareto", "device-1-steps"]
    for svg in re.findall(r"<svg xmlns=.*?</svg>", page, re.S):
        assert re.search(r"<title id=\"[^\"]+-title\">[^<]+</title>", svg)
        assert svg.count("class=\"axis-label\"") == 2 and svg.count("class=\"tick-label\"") >= 4
    expected = [n_points(d) for d in profile.devices]
    counts = {i: len(re.findall(r"<circle class=\"point", svg))
              for i, svg in zip(ids, re.findall(r"<svg xmlns=.*?</svg>", page, re.S))}
    assert counts["device-0-pareto"] == expected[0][0] and counts["device-1-pareto"] == expected[1][0]
    assert counts["device-0-steps"] == expected[0][1]
    assert counts["device-0-batch-artifacts"] + counts["device-0-batch-pipelines"] == expected[0][2]
    assert "single batch size measured (batch 1)" in page  # device 1
    assert page.count("class=\"point pareto\"") == sum(len(pipeline_front(d.pipelines)) for d in profile.devices)
    assert "class=\"pareto-line\"" in page


def test_tables_hold_every_artifact_and_pipeline():
    profile = rich_profile()
    page = render_report(profile)
    d = profile.devices[0]
    artifacts = page.split("<table class=\"artifacts\">")[1].split("</table>")[0]
    assert artifacts.count("<tr>") == len(d.artifacts) + 1
    assert "gpu 120/130, 2 partitions" in artifacts and "12.0%" in artifacts
    pipelines = page.split("<table class=\"pipelines\">")[1].split("</table>")[0]
    assert pipelines.count("<tr>") == len(d.pipelines) + 1
    assert pipelines.count("on front") == len(pipeline_front(d.pipelines))


def test_configurations_with_the_part_stages_say_so():
    page = render_report(factory.profile(factory.parts_device()))
    pipelines = page.split("<table class=\"pipelines\">")[1].split("</table>")[0]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", pipelines)
    assert head[head.index("parts") + 1] == "k"
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row)[head.index("parts")] for row in pipelines.split("<tr>")[2:]]
    assert sorted(cells) == ["off"] * 3 + ["on"] * 3
    assert "k=1 +parts" in page  # the plots name them too
    # a profile without part stages has no such column (and says nothing of them)
    plain = render_report(factory.profile(factory.device()))
    assert ">parts</th>" not in plain and "+parts" not in plain


def test_devices_without_pipelines_or_quality_say_so():
    d = factory.device()
    bare = d.model_copy(update={"pipelines": []})
    unrated = d.model_copy(update={"device": d.device.model_copy(update={"id": "b"}),
                                   "pipelines": [p.model_copy(update={"quality": None}) for p in d.pipelines]})
    page = render_report(factory.profile(bare, unrated))
    assert "no pipeline configurations measured" in page and "no pipeline has a quality figure" in page
    assert "No pipeline configurations measured." in page
    empty = ProfileFile(schema_version=1, generator="tests", devices=[])
    assert "holds no devices" in render_report(empty)


def test_cli_writes_the_page_atomically(tmp_path):
    src, out = tmp_path / "profile.json", tmp_path / "out" / "report.html"
    write_profile(src, rich_profile())
    r = CliRunner().invoke(report_command, [str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not list(out.parent.glob(".*.tmp"))


@pytest.mark.parametrize("content, message", [(None, "no profile at"), ("{}", "is invalid"), ("[1,", "is invalid")])
def test_cli_bad_input_exits_2(tmp_path, content, message):
    src = tmp_path / "profile.json"
    if content is not None:
        src.write_text(content)
    r = CliRunner().invoke(report_command, [str(src), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "r.html").exists()


def test_cli_refuses_a_folder_as_output(tmp_path):
    src = tmp_path / "profile.json"
    write_profile(src, rich_profile())
    r = CliRunner().invoke(report_command, [str(src), "-o", str(tmp_path)])
    assert r.exit_code == 2


# -- rendered in headless Chromium -------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]

# Added to a copy of the page only (the report has no script): what the browser laid out.
PROBE = """<script>
const rendered = [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const points = [...svg.querySelectorAll('circle.point')];
  const inside = points.filter(c => { const b = c.getBoundingClientRect();
    return b.width > 0 && b.left >= box.left && b.right <= box.right && b.top >= box.top && b.bottom <= box.bottom; });
  return {id: svg.id, ns: svg.namespaceURI, width: box.width, height: box.height, points: points.length,
          visible: inside.length, title: svg.querySelector('title').textContent,
          lines: svg.querySelectorAll('polyline').length};
});
document.body.setAttribute('data-rendered', JSON.stringify(rendered));
</script>"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}; CI must run the rendering test")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, ProfileFile]:
    profile = rich_profile()
    path = write_report(profile, tmp_path_factory.mktemp("report") / "report.html")
    return path, profile


def run_chromium(chromium: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", *args],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_plots_render_in_chromium(chromium, page, tmp_path):
    path, profile = page
    probed = tmp_path / "probed.html"
    probed.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    dom = run_chromium(chromium, tmp_path, "--dump-dom", probed.as_uri()).stdout
    attr = re.search(r"data-rendered=\"([^\"]*)\"", dom)
    assert attr, dom[:2000]
    rendered = {r["id"]: r for r in json.loads(html.unescape(attr.group(1)))}
    assert len(rendered) == 6
    for r in rendered.values():
        assert r["ns"] == "http://www.w3.org/2000/svg"
        assert r["width"] > 300 and r["height"] > 150, r
        assert r["points"] > 0 and r["visible"] == r["points"], r
        assert r["title"] and r["lines"] > 0
    (pareto0, steps0, batch0), (pareto1, _, _) = (n_points(d) for d in profile.devices)
    assert rendered["device-0-pareto"]["points"] == pareto0 and rendered["device-1-pareto"]["points"] == pareto1
    assert rendered["device-0-steps"]["points"] == steps0
    assert rendered["device-0-batch-artifacts"]["points"] + rendered["device-0-batch-pipelines"]["points"] == batch0
    # The page as it ships (no probe) parses to the same plots.
    plain = run_chromium(chromium, tmp_path, "--dump-dom", path.as_uri()).stdout
    assert len(re.findall(r"<circle class=\"point", plain)) == sum(r["points"] for r in rendered.values())
    assert html.escape(HOSTILE, quote=False) in plain and "<script>alert" not in plain


def test_screenshot_is_not_blank(chromium, page, tmp_path):
    path, _ = page
    png = tmp_path / "report.png"
    run_chromium(chromium, tmp_path, f"--screenshot={png}", "--window-size=1200,2000", path.as_uri())
    img = read_png(png)
    assert img.shape[:2] == (2000, 1200)
    rgb = img[..., :3].astype(np.int16)
    assert rgb.std() > 10
    assert (rgb.min(axis=2) < 200).mean() > 0.01  # text, axes, points: not an empty white page
    colourful = (rgb.max(axis=2) - rgb.min(axis=2)) > 80  # the plots' series colours
    assert colourful.sum() > 2000
    rows = np.flatnonzero(colourful.any(axis=1))
    assert rows.max() - rows.min() > 500  # colour in both rows of plots, not one stray mark


def read_png(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        return decode_png(path.read_bytes())
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def decode_png(data: bytes) -> np.ndarray:
    """A non-interlaced 8-bit PNG as an (h, w, channels) array: zlib and the five row filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), header
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride = w * ch
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for r in range(h):
        kind = raw[r * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1)
        if kind == 0:
            cur = line
        elif kind == 1:  # sub: a running sum per channel
            cur = np.cumsum(line.reshape(w, ch), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # up
            cur = line + prev
        else:  # average, paeth: each byte needs its reconstructed left neighbour
            row, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = row[i - ch] if i >= ch else 0
                b = up[i]
                if kind == 3:
                    row[i] = (row[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - ch] if i >= ch else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(row), np.uint8)
        out[r] = cur
        prev = out[r]
    return out.reshape(h, w, ch)


def test_decode_png_reads_every_filter():
    """Round trip through a PNG written here with each of the five filters, one per row."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    ch, rows, prev = 3, [], np.zeros(21, np.int32)
    for r in range(10):
        kind, x = r % 5, img[r].reshape(-1).astype(np.int32)
        a = np.concatenate([np.zeros(ch, np.int32), x[:-ch]])
        c = np.concatenate([np.zeros(ch, np.int32), prev[:-ch]])
        pa, pb, pc = np.abs(prev - c), np.abs(a - c), np.abs(a + prev - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, c))
        pred = [0, a, prev, (a + prev) // 2, paeth][kind]
        rows.append(bytes([kind]) + ((x - pred) % 256).astype(np.uint8).tobytes())
        prev = x

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 7, 10, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    assert np.array_equal(decode_png(data), img)


def test_a_roofline_above_100_percent_says_the_peak_is_wrong():
    from hpv.profiles.report import _roofline

    assert _roofline(0.42) == "42.0%" and _roofline(None) is None
    assert "peak measured too low" in _roofline(3.35)


# -- what the page explains (issue 13) ---------------------------------------------------------

def test_runtimes_are_those_the_profile_used():
    d = factory.device()
    d = d.model_copy(update={"device": d.device.model_copy(update={
        "runtimes": {"onnxruntime": "1.32.0", "ai-edge-litert": "2.3.0", "delegate": "gpu"}})})
    page = render_report(factory.profile(d))
    runtimes = re.search(r"<dt>runtimes</dt><dd>([^<]*)</dd>", page).group(1)
    assert runtimes == "onnxruntime 1.32.0, delegate gpu"  # unattributed keys stay; litert ran nothing here


def test_single_batch_panel_says_how_to_fill_it():
    page = render_report(factory.profile(factory.device()))
    assert "single batch size measured (batch 1): profile with several, e.g. " \
           "`hpv profile BUILD --batch 1 --batch 2 --batch 4`, to fill this plot" in page


def test_load_time_is_explained():
    page = render_report(factory.profile(factory.device()))
    artifacts = page.split("<table class=\"artifacts\">")[1].split("</table>")[0]
    assert "load: from the file to a session ready to run" in artifacts and "not per frame" in artifacts
    assert re.search(r"<th class=\"num\" title=\"load: [^\"]+\">load ms</th>", artifacts)


def test_columns_equal_in_every_row_move_to_the_caption():
    """The pipelines table fits the page instead of scrolling sideways: one pipeline, generator,
    batch, resolution and quality source for every row are said once, in the caption."""
    d = factory.device(precisions=("fp32", "int8"))
    long_source = "bench/quality.py --sequences 6 --frames 10 (test split of the cpu data, 6 sequences)"
    d = d.model_copy(update={"pipelines": [p.model_copy(update={"quality": p.quality.model_copy(
        update={"source": long_source})}) for p in d.pipelines]})
    page = render_report(factory.profile(d))
    pipelines = page.split("<table class=\"pipelines\">")[1].split("</table>")[0]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", pipelines)
    assert head == ["precision", "k", "p50 ms/frame", "p90 ms/frame", "p99 ms/call", "expected PSNR dB",
                    "PSNR dB (PyTorch)", "artifact PSNR dB", "Pareto"]
    caption = re.search(r"<caption>([^<]*)</caption>", pipelines).group(1)
    assert caption.startswith("every row: pipeline default, generator fire_gen, batch 1, resolution 768, "
                              f"quality source {html.escape(long_source)}")
    # Columns that differ stay, and a long free-text column wraps instead of widening the table.
    rich = render_report(rich_profile())
    rich_head = re.findall(r"<th[^>]*>([^<]*)</th>", rich.split("<table class=\"pipelines\">")[1].split("</table>")[0])
    assert "batch" in rich_head
    two_sources = d.model_copy(update={"pipelines": [p.model_copy(update={"quality": p.quality.model_copy(
        update={"source": f"run {i % 2}"})}) for i, p in enumerate(d.pipelines)]})
    assert "<td class=\"wrap\">run 1</td>" in render_report(factory.profile(two_sources))


def _front_labels(page: str, device: int) -> list[str]:
    svg = re.search(rf"<svg[^>]*id=\"device-{device}-pareto\".*?</svg>", page, re.S).group(0)
    return re.findall(r"<text class=\"point-label\"[^>]*>([^<]*)</text>", svg)


def test_every_place_on_the_front_is_labelled_by_name_or_by_number():
    profile = rich_profile()
    page = render_report(profile)
    for i, d in enumerate(profile.devices):
        front = pipeline_front(d.pipelines)
        places = {(p.per_frame_p90_ms, p.quality.expected_psnr_db) for p in front}
        labels = _front_labels(page, i)
        assert len(labels) == len(places), (i, labels)
        if all(re.fullmatch(r"[\d/]+", t) for t in labels):  # crowded: numbers, named in the key
            numbers = sorted(int(n) for t in labels for n in t.split("/"))
            assert numbers == list(range(1, len(front) + 1))
            section = page.split(f"id=\"device-{i}-pareto\"")[1].split("</figure>")[0]
            assert len(re.findall(r"<li value=\"\d+\">k=\d", section)) == len(front)
    assert all(re.fullmatch(r"[\d/]+", t) for t in _front_labels(page, 0))  # device 0 is crowded
    assert _front_labels(page, 1) == ["k=0", "k=1", "k=2"]  # device 1 has room for names


LABEL_PROBE = """<script>
const found = [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  return {id: svg.id, labels: [...svg.querySelectorAll('text.point-label')].map(box),
          points: [...svg.querySelectorAll('circle.point')].map(box)};
});
document.body.setAttribute('data-labels', JSON.stringify(found));
</script>"""


def test_point_labels_overlap_no_label_and_no_point_in_chromium(chromium, page, tmp_path):
    """As the browser lays the text out (its own font, not the estimate): no label touches another
    label or any point."""
    path, _ = page
    probed = tmp_path / "labels.html"
    probed.write_text(path.read_text().replace("</body>", LABEL_PROBE + "</body>"))
    dom = run_chromium(chromium, tmp_path, "--dump-dom", probed.as_uri()).stdout
    charts = json.loads(html.unescape(re.search(r"data-labels=\"([^\"]*)\"", dom).group(1)))

    def overlap(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    labelled = 0
    for chart in charts:
        labels = chart["labels"]
        labelled += len(labels)
        for i, a in enumerate(labels):
            assert not any(overlap(a, b) for b in labels[i + 1:]), chart["id"]
            assert not any(overlap(a, p) for p in chart["points"]), chart["id"]
    assert labelled >= 9
