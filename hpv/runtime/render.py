"""`hpv render`: a `.pose` file (or the synthetic default) through a compiled pipeline into an
H.264 MP4, frame by frame with the recurrent state carried.

The scheduler picks the configuration from a device profile; the online controller switches the
part stages off, steps k (and then resolution) down, or back up, from the measured frame times.
Frames stream through a bounded buffer to an encoder thread: computing runs ahead of the encoder by
at most `buffer` frames. With `pace` the encoder consumes in real time (frame i is due `i / fps`
after the first), as a player would, and a frame not ready by its due time counts as missed.
Independent sequences are batched when the plan says batching pays; within one sequence the
recurrent order is kept."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from hpv.errors import ConfigError, MissingExtraError, UnknownNameError

FRAME_CHUNK = 16  # poses are rendered this many frames at a time
RATE_DENOMINATOR = 1001  # NTSC's 30000/1001 is the largest denominator a frame rate needs


def video_rate(fps: float) -> Fraction:
    """The frame rate as the encoder takes it: the rational nearest `fps` (0.5 -> 1/2, 29.97 ->
    2997/100, float32 29.97003 -> 30000/1001), never rounded to a whole number of frames."""
    from hpv.pose.sequence import fps_problem

    problem = fps_problem(fps)
    if problem:
        raise ConfigError(problem)
    return Fraction(fps).limit_denominator(RATE_DENOMINATOR)


@dataclass
class RenderReport:
    outputs: list[Path]
    frames: int  # per sequence
    sequences: int
    seconds: float
    first_frame_ms: float
    frame_ms: list[float] = field(default_factory=list)  # compute time per call (all sequences)
    steps: list[int] = field(default_factory=list)  # k per frame
    parts: list[bool] = field(default_factory=list)  # per frame: part stages drawn
    missed: int = 0
    deadline_ms: float | None = None
    plan: str | None = None
    switches: int = 0
    precision: str = ""
    batch: int = 1
    has_parts: bool = False  # the build has part stages

    @property
    def achieved_fps(self) -> float:
        """Frames of all sequences produced per second of wall time, encoding included."""
        return self.frames * self.sequences / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        return {"outputs": [str(p) for p in self.outputs], "frames": self.frames, "sequences": self.sequences,
                "seconds": round(self.seconds, 3), "achieved_fps": round(self.achieved_fps, 2),
                "first_frame_ms": round(self.first_frame_ms, 2), "missed": self.missed,
                "deadline_ms": self.deadline_ms, "plan": self.plan, "switches": self.switches,
                "precision": self.precision, "batch": self.batch, "has_parts": self.has_parts,
                "k_histogram": {str(k): self.steps.count(k) for k in sorted(set(self.steps))},
                "k_per_frame": self.steps,
                "parts_histogram": {"on": sum(self.parts), "off": len(self.parts) - sum(self.parts)},
                "parts_per_frame": self.parts,
                "frame_ms_p50": round(float(np.median(self.frame_ms)), 3) if self.frame_ms else None,
                "frame_ms_p90": round(float(np.percentile(self.frame_ms, 90)), 3) if self.frame_ms else None}


def load_sequences(inputs: list[Path], default_frames: int):
    from hpv.pose import default_sequence, load_sequence

    if not inputs:
        return [default_sequence(num_frames=default_frames, seed=0)]
    return [load_sequence(p) for p in inputs]


def choose(manifest, profile, device_id: str | None, fps: float | None, sequences: int, *,
           precision: str | None, steps: int | None, headroom: float, first_frame_ms: float | None = None,
           parts: bool = True):
    """(plan or None, precision, k, batch) for this build: the scheduler's choice where a profile
    and a frame rate are given, restricted to the configurations this build can run (and without
    `parts`, to those that leave the part stages out)."""
    from hpv.runtime.pipeline import precisions

    have = precisions(manifest)
    if precision is not None and precision not in have:
        raise UnknownNameError("precision in this build", precision, have)
    if profile is None or fps is None:
        return None, precision or have[0], steps, 1
    from hpv.profiles.local import local_identity
    from hpv.runtime.scheduler import plan

    devices = [d for d in profile.devices if d.target == manifest.target]
    if device_id is not None:
        devices = [d for d in devices if d.device.id == device_id]
        if not devices:
            raise UnknownNameError(f"device of target {manifest.target} in the profile", device_id,
                                   [d.device.id for d in profile.devices])
    elif len(devices) > 1:
        here = local_identity(None).id
        devices = [d for d in devices if d.device.id == here] or devices[:1]
    if not devices:
        raise ConfigError(f"the profile has no device measured with target {manifest.target}; "
                          f"profile this build first: hpv profile ARTIFACTS_DIR --out PROFILE")
    device = devices[0]
    runnable = [p for p in device.pipelines if p.pipeline == manifest.pipeline and p.precision in have
                and (precision is None or p.precision == precision) and (steps is None or p.steps <= steps)
                and (parts or not p.parts)]
    device = device.model_copy(update={"pipelines": runnable})
    # The scheduler counts every frame produced: S sequences at `fps` each are S * fps frames a second.
    chosen = plan(device, fps * sequences, headroom=headroom, max_batch=sequences, first_frame_ms=first_frame_ms)
    return chosen, chosen.config.precision, chosen.config.steps, chosen.config.batch


COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}


@dataclass(frozen=True)
class Background:
    """What the video shows behind the person. The app keys the chroma green out (a pixel is
    background when g > 0.5, g > 1.5 r and g > 1.5 b, `hpv.metrics.chroma_foreground`) and draws the
    person over its page: `colour` does the same over a solid colour (the app's white by default),
    `alpha` writes the key as an alpha channel (RGBA, PNG in a .mov), `keep` the model's own frames."""

    mode: str  # "colour", "alpha" or "keep"
    rgb: tuple[int, int, int] = (255, 255, 255)

    @classmethod
    def parse(cls, text: str) -> Background:
        t = text.strip().lower()
        if t in ("keep", "alpha"):
            return cls(t)
        if t in COLOURS:
            return cls("colour", COLOURS[t])
        hexa = t.removeprefix("#")
        if len(hexa) == 6 and all(c in "0123456789abcdef" for c in hexa):
            return cls("colour", tuple(int(hexa[i:i + 2], 16) for i in (0, 2, 4)))
        raise ConfigError(f"--background {text!r}: give white (the app's), black, grey, a colour as #rrggbb, "
                          "alpha (RGBA .mov) or keep (the model's green screen)")

    @property
    def suffix(self) -> str:
        return ".mov" if self.mode == "alpha" else ".mp4"

    def apply(self, images: np.ndarray | None, rgb: np.ndarray, person: np.ndarray | None = None) -> np.ndarray:
        """uint8 [B,H,W,3|4] frames from the model's [B,3,H,W] in [0,1] and their uint8 rgb (or,
        instead of the frames, their chroma key `person` [B,H,W] when already computed)."""
        if self.mode == "keep":
            return rgb
        if person is None:
            from hpv.metrics import chroma_foreground

            person = chroma_foreground(images)  # [B, H, W]
        if self.mode == "alpha":
            return np.concatenate([rgb, (person * np.uint8(255))[..., None]], axis=-1)
        return np.where(person[..., None], rgb, np.array(self.rgb, np.uint8))


class VideoFrames:
    """The model's frames [B,3,H,W] in its output range [lo, hi] -> uint8 video frames over the
    background, as `(images - lo) / (hi - lo)` scaled to bytes (truncated) and keyed
    (`Background.apply`'s values), in few passes and into work arrays kept from frame to frame.
    `planar` (every background but alpha): [B,3,H,W] RGB planes, which the writer hands the encoder
    as planar GBR without a transpose; else [B,H,W,4] RGBA. Measured alone at 768: 7.3 ms a
    frame the plain NumPy way (fresh 7 MB temporaries, an interleaving transpose, a masked
    select), 1.3 ms this way."""

    def __init__(self, lo: float, hi: float, background: Background):
        self.lo, self.hi, self.background = float(lo), float(hi), background
        self.planar = background.mode != "alpha"
        self._unit: np.ndarray | None = None
        self._key: dict = {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self._unit is None or self._unit.shape != images.shape:
            self._unit = np.empty(images.shape, np.float32)
        unit = self._unit
        np.subtract(images, self.lo, out=unit)
        np.divide(unit, self.hi - self.lo, out=unit)
        person = None
        if self.background.mode != "keep":
            from hpv.metrics import chroma_foreground

            person = chroma_foreground(unit, self._key)
        np.multiply(unit, 255, out=unit)
        unit += 0.5
        np.clip(unit, 0, 255, out=unit)
        if not self.planar:
            rgb = unit.astype(np.uint8).transpose(0, 2, 3, 1)
            return self.background.apply(None, rgb, person)
        planes = np.empty(unit.shape, np.uint8)  # a new array: it goes to the encoder
        np.copyto(planes, unit, casting="unsafe")  # truncated, as astype(uint8)
        if person is not None:  # the colour where keyed, in bytes: plane & keep | colour & ~keep
            keep = np.multiply(person.view(np.uint8), np.uint8(255), out=self._held("keep", person.shape))
            off = np.invert(keep, out=self._held("off", person.shape))
            fill = self._held("fill", person.shape)
            for c, value in enumerate(self.background.rgb):
                np.bitwise_and(planes[:, c], keep, out=planes[:, c])
                if value:
                    np.bitwise_or(planes[:, c], np.bitwise_and(off, np.uint8(value), out=fill), out=planes[:, c])
        return planes

    def _held(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        a = self._key.get(name)
        if a is None or a.shape != shape or a.dtype != np.uint8:
            a = self._key[name] = np.empty(shape, np.uint8)
        return a


def check_outputs(outputs: list[Path], background: Background | None = None) -> None:
    """Refuse, before anything loads or renders, an output that could not be written at the end:
    an existing folder, a parent that is a file, or a folder this user may not write in."""
    for out in map(Path, outputs):
        if out.is_dir():
            raise ConfigError(f"{out} is an existing folder: give -o the MP4 to write, like {out / 'out.mp4'}")
        if background is not None and out.suffix.lower() != background.suffix:
            kind = "RGBA video (PNG in QuickTime)" if background.mode == "alpha" else "H.264 MP4"
            raise ConfigError(f"{out}: --background {background.mode} writes {kind}; name the output "
                              f"{out.with_suffix(background.suffix).name}")
        parent = next(p for p in (out.parent, *out.parent.parents) if p.exists() or p == p.parent)
        if not parent.is_dir():
            raise ConfigError(f"cannot write {out}: {parent} is a file, not a folder; choose another -o")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write {out}: no permission to write in {parent}; choose another -o")


def _stop(producer: threading.Thread, stop: threading.Event, frames_q: queue.Queue) -> None:
    """Stop the producer and wait for it: it finishes its call into the runtime and exits (the
    queue drained so a full one cannot block it). A runtime thread still inside a session when
    the interpreter exits aborts the process ("terminate called without an active exception")."""
    stop.set()
    if producer.ident is None:  # never started
        return
    while producer.is_alive():
        try:
            frames_q.get(timeout=0.05)
        except queue.Empty:
            pass
    producer.join()


class _Writer:
    """One H.264 MP4 (or, with alpha, PNG-in-QuickTime RGBA) per sequence, written to a temp file
    and renamed when complete."""

    def __init__(self, outputs: list[Path], rate: Fraction, size: int, crf: int = 20, alpha: bool = False):
        try:
            import av
        except ImportError:
            raise MissingExtraError("av", "video") from None
        self.final = outputs
        self.fmt = "rgba" if alpha else "rgb24"
        suffix, container_format = (".mov", "mov") if alpha else (".mp4", "mp4")
        self.tmp = [p.with_name(f".{p.stem}.partial{suffix}") for p in outputs]
        self.containers, self.streams = [], []
        try:
            for path in self.tmp:
                path.parent.mkdir(parents=True, exist_ok=True)
                container = av.open(str(path), mode="w", format=container_format)
                self.containers.append(container)
                stream = container.add_stream("png" if alpha else "libx264", rate=rate)
                stream.width = stream.height = size
                stream.pix_fmt = "rgba" if alpha else "yuv420p"
                if not alpha:
                    stream.options = {"crf": str(crf), "preset": "veryfast"}
                self.streams.append(stream)
        except BaseException:
            self.close(keep=False)  # no partial file left by a writer that never started
            raise

    def write(self, images: np.ndarray, planar: bool = False) -> None:
        """uint8 frames, one per output: [N,H,W,3|4], or with `planar` [N,3,H,W] RGB planes."""
        import av

        for container, stream, image in zip(self.containers, self.streams, images):
            frame = self._planar_frame(image) if planar else None
            if frame is None:
                image = image.transpose(1, 2, 0) if planar else image
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=self.fmt)
            for packet in stream.encode(frame):
                container.mux(packet)

    @staticmethod
    def _planar_frame(planes: np.ndarray):
        """A planar GBR frame holding `planes` [3,H,W] (RGB), or None where its rows are padded."""
        import av

        frame = av.VideoFrame(planes.shape[2], planes.shape[1], "gbrp")
        if any(p.line_size != planes.shape[2] for p in frame.planes):
            return None
        for plane, c in zip(frame.planes, (1, 2, 0)):  # gbrp: green, blue, red
            plane.update(np.ascontiguousarray(planes[c]))
        return frame

    def close(self, keep: bool) -> None:
        for i, container in enumerate(self.containers):
            try:
                if keep:
                    for packet in self.streams[i].encode():
                        container.mux(packet)
            finally:
                container.close()
        for tmp, final in zip(self.tmp, self.final):
            if keep:
                os.replace(tmp, final)
            else:
                tmp.unlink(missing_ok=True)


def render_video(build: Path, outputs: list[Path], inputs: list[Path] | None = None, *, profile=None,
                 device_id: str | None = None, fps: float | None = None, precision: str | None = None,
                 steps: int | None = None, parts: bool = True, headroom: float = 0.85,
                 first_frame_ms: float | None = None, buffer: int = 8, pace: bool = False,
                 frames: int | None = None, default_frames: int = 100, controller: bool = True,
                 background: Background | str = "white", progress: Callable[[int, int, int], None] | None = None) -> RenderReport:
    from hpv.pose.conditioning import DEPTH, conditioning
    from hpv.pose.keypoints import depth
    from hpv.runtime.build import load_build
    from hpv.runtime.controller import Controller
    from hpv.runtime.pipeline import CompiledPipeline

    if buffer < 1:
        raise ConfigError(f"buffer must be >= 1 frame, got {buffer}")
    if fps is not None:
        video_rate(fps)  # NaN, inf, <= 0 or absurd: refused before anything loads
    background = Background.parse(background) if isinstance(background, str) else background
    check_outputs(outputs, background)
    loaded = load_build(build)  # once: the manifest checked against every artifact's own signature
    manifest = loaded.manifest
    seqs = load_sequences(list(inputs or []), default_frames)
    if len(outputs) != len(seqs):
        raise ConfigError(f"{len(seqs)} sequences need {len(seqs)} outputs, got {len(outputs)}")
    chosen, precision, k, batch = choose(manifest, profile, device_id, fps, len(seqs), precision=precision,
                                         steps=steps, headroom=headroom, first_frame_ms=first_frame_ms, parts=parts)
    pipe = CompiledPipeline(loaded, precision, batch)
    parts = pipe.has_parts and (chosen.config.parts if chosen is not None else parts)
    if k is None:  # no plan, no --steps: the best looks the quality table knows, else every step
        from hpv.profiles.quality import best_steps

        best = best_steps(manifest.pipeline, pipe.max_steps)
        k = pipe.max_steps if best is None else best
    if not 0 <= k <= pipe.max_steps:
        raise ConfigError(f"--steps {k}: this pipeline refines 0..{pipe.max_steps} steps")
    ctl = Controller.from_plan(chosen) if chosen is not None and controller else None
    video_fps = fps or float(seqs[0].fps or 25.0)
    n = min(s.num_frames for s in seqs) if frames is None else min(frames, *(s.num_frames for s in seqs))
    lo, hi = pipe.upscaler.output("upscaled").value_range or (0.0, 1.0)
    report = RenderReport(outputs, n, len(seqs), 0.0, 0.0, deadline_ms=1000 / fps if fps else None,
                          plan=None if chosen is None else chosen.reason, precision=precision, batch=batch,
                          has_parts=pipe.has_parts)
    to_video = VideoFrames(lo, hi, background)
    frames_q: queue.Queue = queue.Queue(maxsize=buffer)
    failure: list[BaseException] = []
    stop = threading.Event()  # set when the consumer gives up (an error, Ctrl-C, SIGTERM)
    start = time.perf_counter()

    groups = -(-len(seqs) // batch)
    padded = seqs + [seqs[-1]] * (groups * batch - len(seqs))  # a short last group repeats a sequence
    states = []  # each group carries its own state (and part boxes, tracked at its sequences' rate)
    for g in range(groups):
        pipe.reset(fps=padded[g * batch].fps or video_fps)
        states.append((dict(pipe.state), None, pipe.parts))

    def produce() -> None:
        try:
            rendered: dict = {}
            keys = pipe.conditioning_keys
            for t in range(n):
                if t % FRAME_CHUNK == 0:  # the next chunk of pose inputs for every sequence
                    chunk = []
                    for s in padded:
                        frames_of = s.frames(t, min(t + FRAME_CHUNK, n))
                        chunk.append(conditioning(frames_of, keys))
                        if pipe.has_parts:  # the hands' depth orders them against the body
                            chunk[-1][DEPTH] = depth(frames_of)
                    rendered = {key: np.stack([c[key] for c in chunk], axis=1) for key in chunk[0]}
                for g in range(groups):
                    if stop.is_set():
                        return
                    poses = {r: a[t % FRAME_CHUNK, g * batch:(g + 1) * batch] for r, a in rendered.items()}
                    level, drawn = (ctl.config.steps, pipe.has_parts and ctl.config.parts) if ctl else (k, parts)
                    pipe.state, pipe.previous, pipe.parts = states[g]
                    t0 = time.perf_counter()
                    images = pipe.frame(poses, level, parts=drawn)
                    ms = (time.perf_counter() - t0) * 1e3
                    states[g] = (pipe.state, pipe.previous, pipe.parts)
                    if ctl:
                        ctl.observe(ms / batch)
                    report.frame_ms.append(ms)
                    report.steps.append(level)
                    report.parts.append(drawn)
                    frames_q.put((t, g, to_video(images)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)
        finally:
            frames_q.put(None)

    producer = threading.Thread(target=produce, name="hpv-render", daemon=True)
    writer = _Writer(outputs, video_rate(video_fps), pipe.resolution, alpha=background.mode == "alpha")
    ok = False
    try:
        producer.start()
        first_ready = None
        pending: dict[int, list] = {}
        while (item := frames_q.get()) is not None:
            t, group, rgb = item
            now = time.perf_counter()
            if first_ready is None:
                first_ready = now
                report.first_frame_ms = (now - start) * 1e3
            due = first_ready + t / video_fps
            if fps is not None and group == 0 and t > 0 and now > due + 1e-3:
                report.missed += 1
            if pace and now < due:
                time.sleep(due - now)
            pending.setdefault(t, []).append(rgb)
            if len(pending[t]) == groups:
                writer.write(np.concatenate(pending.pop(t))[:len(seqs)], planar=to_video.planar)
                if progress:
                    progress(t + 1, n, report.steps[-1])
        producer.join()
        if failure:
            raise failure[0]
        ok = True
    finally:
        try:
            _stop(producer, stop, frames_q)
        finally:
            writer.close(keep=ok)
    report.seconds = time.perf_counter() - start
    report.switches = len(ctl.switches) if ctl else 0
    return report
