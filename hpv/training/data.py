"""(pose, person frame) pairs for training and evaluation, split by sequence.

Sources, in order: the user's own video + `.pose` pairs; the fingerspelling poses of
`spoken-to-signed` (optional); seeded synthetic signing. Ground truth for poses without video is
the procedural signer drawn on the green screen. Everything is deterministic given the config;
built data is cached on disk, keyed by what it was built from."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hpv.training.config import DataConfig

CACHE_VERSION = 2


@dataclass
class Sequence:
    id: str
    pose: dict[int, np.ndarray]  # resolution -> conditioning images uint8 [T,R,R,3]
    target: dict[int, np.ndarray]  # resolution -> ground-truth person frames uint8 [T,R,R,3]
    keypoints: np.ndarray | None = None  # float32 [T,178,3]: x, y (512 frame), confidence

    @property
    def num_frames(self) -> int:
        return len(self.keypoints) if self.keypoints is not None else len(next(iter(self.pose.values())))

    def conditioning(self, key, frames: slice = slice(None)) -> np.ndarray:
        """Model input for a conditioning key: "keypoints" [T,178,3], or a drawn image
        resolution -> float32 [T,3,R,R] in [-1, 1]."""
        from hpv.pose import to_model_input

        if key == "keypoints":
            return self.keypoints[frames]
        return to_model_input(self.pose[key][frames])

    def frames(self, stop: int) -> Sequence:
        """The first `stop` frames."""
        return Sequence(self.id, {r: a[:stop] for r, a in self.pose.items()},
                        {r: a[:stop] for r, a in self.target.items()},
                        None if self.keypoints is None else self.keypoints[:stop])


@dataclass
class Dataset:
    train: list[Sequence] = field(default_factory=list)
    val: list[Sequence] = field(default_factory=list)
    test: list[Sequence] = field(default_factory=list)

    def split(self, name: str) -> list[Sequence]:
        return getattr(self, name)


@dataclass(frozen=True)
class Resolutions:
    pose: tuple[int, ...]  # conditioning images
    target: tuple[int, ...]  # ground truth for every sequence
    hr: int | None = None  # ground truth only for val, test and the first `hr_sequences` training sequences


def assign_splits(ids: list[str]) -> dict[str, str]:
    """Split by sequence, stable under adding sequences: order by a hash of the id; the first
    tenth (at least one) is test, the next tenth (at least one) val, the rest train. Variants of
    one sequence ("<id>#mirror", "<id>#jitter") share its split, so none leaks across."""
    base = {i: i.split("#")[0] for i in ids}
    order = sorted(set(base.values()), key=lambda i: (zlib.crc32(i.encode()), i))
    n = max(1, len(order) // 10)
    split = {i: "test" if k < n else "val" if k < 2 * n else "train" for k, i in enumerate(order)}
    return {i: split[base[i]] for i in ids}


def pose_sequences(cfg: DataConfig):
    """(id, PoseSequence) pairs: real files, seeded synthetic signing cycling through the arm styles
    (rest with the hands below the frame, at the face, crossing, wide, mixed), and variants
    (mirrored, normalization jitter, missing keypoints) of every `cfg.variant_every`-th sequence."""
    from hpv.pose import default_sequence
    from hpv.pose.augment import drop, jitter, mirror
    from hpv.pose.synthetic import STYLES

    seqs = []
    if cfg.real and cfg.max_real > 0:
        from hpv.data.real_poses import real_sequences

        for name, seq in real_sequences(limit=cfg.max_real):
            if seq.num_frames >= 4:
                start = max(0, (seq.num_frames - cfg.frames) // 2)
                seqs.append((f"real/{name}", seq.frames(start, start + cfg.frames)))
    styles = STYLES if cfg.styles else ("sign",)
    for i in range(cfg.synthetic_sequences):
        style = styles[i % len(styles)]
        seqs.append((f"synthetic/{cfg.seed}/{i}/{style}",
                     default_sequence(num_frames=cfg.frames, seed=cfg.seed * 100_003 + i, style=style)))
    if cfg.variant_every:
        variants = []
        for k, (sid, seq) in enumerate(seqs[::cfg.variant_every]):
            rng = np.random.default_rng([cfg.seed, zlib.crc32(sid.encode())])
            kind = ("mirror", "jitter", "drop")[k % 3]
            aug = mirror(seq) if kind == "mirror" else jitter(seq, rng) if kind == "jitter" else drop(jitter(seq, rng), rng)
            variants.append((f"{sid}#{kind}", aug))
        seqs += variants
    return seqs


def _mtime(path) -> int | None:
    path = Path(path)
    return path.stat().st_mtime_ns if path.is_file() else None  # a missing file fails in load_pairs


def _cache_key(cfg: DataConfig, res: Resolutions, pairs: list[tuple[Path, Path]]) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "cfg": asdict(cfg), "res": asdict(res),
                       "pairs": [(str(v), str(p), _mtime(v), _mtime(p)) for v, p in pairs]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_dataset(cfg: DataConfig, res: Resolutions, *, pairs: list[tuple[Path, Path]] = (),
                  cache_dir: Path | None = None, progress=None) -> Dataset:
    """Render every sequence at the resolutions asked; load from `cache_dir` when built before."""
    pairs = list(pairs)
    cache = Path(cache_dir) / f"data-{_cache_key(cfg, res, pairs)}.npz" if cache_dir else None
    if cache and cache.is_file():
        return _load(cache)
    items: list[tuple[str, object, dict[int, np.ndarray] | None]] = []
    for video, pose in pairs:
        from hpv.data.video import load_pairs

        frames = {}
        for r in (*res.target, *((res.hr,) if res.hr else ())):
            seq, frames[r] = load_pairs(video, pose, r)
        items.append((f"video/{Path(video).stem}", seq, frames))
    items += [(i, s, None) for i, s in pose_sequences(cfg)]

    splits = assign_splits([i for i, _, _ in items])
    # High-resolution ground truth is large (1.8 MB a frame at 768): the first hr_sequences training
    # sequences, and the first hr_eval_sequences of val and test by id (what evaluation reads).
    eval_hr = {i for split in ("val", "test")
               for i in sorted(i for i, _, _ in items if splits[i] == split)[:cfg.hr_eval_sequences]}
    jobs, hr_left = [], cfg.hr_sequences
    for sid, seq, frames in items:
        split = splits[sid]
        want = list(res.target)
        if res.hr and (sid in eval_hr or (split == "train" and hr_left > 0)):
            want.append(res.hr)
            hr_left -= split == "train"
        jobs.append((sid, seq, frames, tuple(want), res.pose))
    data = Dataset()
    workers = min(os.cpu_count() or 1, 8)
    pool = None
    if workers > 1 and len(jobs) > 4:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Rendering is per sequence and single-threaded: one process per core ("spawn": no fork of
        # a process with torch's threads). map() keeps job order, so the data does not depend on
        # the worker count.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        done = pool.map(_render_job, jobs, chunksize=2) if pool else map(_render_job, jobs)
        for n, item in enumerate(done):
            data.split(splits[item.id]).append(item)
            if progress:
                progress(n + 1, len(jobs))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if cache:
        _save(cache, data)
    return data


def _render_job(job) -> Sequence:
    from hpv.data.signer import render_signer
    from hpv.pose import render

    from hpv.pose.keypoints import keypoints

    sid, seq, frames, target_res, pose_res = job
    target = {r: frames[r] if frames else render_signer(seq, r) for r in target_res}
    return Sequence(sid, {r: render(seq, r) for r in pose_res}, target, keypoints(seq))


def _save(path: Path, data: Dataset) -> None:
    import io

    from hpv.atomic import write_bytes

    arrays, index = {}, []
    for split in ("train", "val", "test"):
        for k, s in enumerate(data.split(split)):
            index.append({"split": split, "id": s.id, "pose": sorted(s.pose), "target": sorted(s.target)})
            arrays[f"{split}/{k}/keypoints"] = s.keypoints
            for r, a in s.pose.items():
                arrays[f"{split}/{k}/pose/{r}"] = a
            for r, a in s.target.items():
                arrays[f"{split}/{k}/target/{r}"] = a
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def _load(path: Path) -> Dataset:
    data = Dataset()
    with np.load(path, allow_pickle=False) as z:
        index = json.loads(z["index"].tobytes())
        counters = {"train": 0, "val": 0, "test": 0}
        for entry in index:
            split = entry["split"]
            k = counters[split]
            counters[split] += 1
            data.split(split).append(Sequence(
                entry["id"],
                {r: z[f"{split}/{k}/pose/{r}"] for r in entry["pose"]},
                {r: z[f"{split}/{k}/target/{r}"] for r in entry["target"]},
                z[f"{split}/{k}/keypoints"],
            ))
    return data
