"""The web runtime package (`web/dist/hpv.js`) driven in headless Chromium through
`web/pages/frames.html`: a build and a `.pose` file served locally, frames run in the page (in a
Web Worker or on the main thread) and posted back, or whole frames timed in the page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpv.compiler.web.chromium import Chromium, build_package, chromium_version, web_dir
from hpv.compiler.web.server import LocalServer

_WAIT_READY = ("for (let i = 0; i < 400 && !window.hpvReady; i++) await new Promise(r => setTimeout(r, 25)); "
               "if (!window.hpvReady) throw new Error('the page did not load its module'); return true;")


class RuntimePage:
    """`with RuntimePage(build, pose) as p: p.frames(12, k=1)` -> [12, 3, H, W] float32."""

    def __init__(self, build: Path, pose: Path | np.ndarray, *, precision: str = "fp32", worker: bool = True,
                 threads: int = 1, ep: str = "wasm", spinning: bool | None = None):
        """pose: a .pose file (read in the page by the web package), or float32 [T, 178, 3] keypoints.
        spinning: whether the sessions' wasm threads spin within a run (None: the package's default)."""
        build_package()
        self.ep, self.threads = ep, threads
        self.server = LocalServer().__enter__()
        try:
            self.server.mount("/web/", web_dir())
            self.server.mount("/build/", Path(build))
            if isinstance(pose, np.ndarray):
                source = {"keypointsUrl": self.server.put_blob(np.ascontiguousarray(pose, "<f4").tobytes())}
            else:
                self.server.serve_file(f"/pose/{Path(pose).name}", Path(pose))
                source = {"poseUrl": self.server.url(f"/pose/{Path(pose).name}")}
            self.browser = Chromium(webgpu=ep == "webgpu")
        except BaseException:
            self.server.close()
            raise
        try:
            self.browser.goto(self.server.url("/web/pages/frames.html"))
            self.browser.eval(_WAIT_READY)
            opts = {"buildUrl": self.server.url("/build/"), **source, "precision": precision, "worker": worker,
                    "threads": threads, "ep": ep, **({} if spinning is None else {"spinning": spinning})}
            self.ready: dict = self.browser.eval(f"return await hpvFrames.open({json.dumps(opts)});")
        except BaseException:
            self.close()
            raise
        self.chromium = chromium_version()

    @property
    def runs_on(self) -> str:
        r = self.ready
        return (f"chromium {self.chromium} onnxruntime-web {r.get('ort')} {self.ep} {self.threads} "
                f"thread{'s' * (self.threads != 1)}, {'Web Worker' if r.get('where') == 'worker' else 'main thread'}")

    @property
    def has_parts(self) -> bool:
        """Whether the build draws part stages (hands, face) and stitches them in."""
        return bool(self.ready.get("hasParts"))

    def frames(self, count: int, k: int, parts: bool = True) -> tuple[np.ndarray, list[float]]:
        """The first `count` frames at `k` (the part stages drawn where the build has them and
        `parts`) from a fresh state, and each frame's ms in the page. A .pose file's z orders the
        hands against the body, as `hpv render` does."""
        slot = self.server.new_slot()
        args = {"count": count, "k": k, "parts": parts, "slot": slot}
        res = self.browser.eval(f"return await hpvFrames.frames({json.dumps(args)});")
        size = int(self.ready["resolution"])
        data = np.frombuffer(self.server.take(slot), np.float32).reshape(res["frames"], 3, size, size)
        return data, res["times"]

    def time(self, k: int, runs: int, warmup: int = 3, parts: bool = True) -> list[float]:
        """ms per whole frame (generator, k refiner steps, upscaler, the part stages where the build
        has them and `parts`; state carried), in the page."""
        args = {"k": k, "runs": runs, "warmup": warmup, "parts": parts}
        return self.browser.eval(f"return await hpvFrames.time({json.dumps(args)});")

    def close(self) -> None:
        try:
            if hasattr(self, "browser"):
                self.browser.close()
        finally:
            self.server.close()

    def __enter__(self) -> RuntimePage:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
