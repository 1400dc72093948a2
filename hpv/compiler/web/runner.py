"""ONNX artifacts run inside headless Chromium on an onnxruntime-web execution provider.

One browser per execution provider is started on first use and kept for the process (a build
verifies several artifacts; starting Chromium costs seconds), closed at exit. Each call's inputs
go to the page as one binary blob over the local server and the outputs come back the same way."""

from __future__ import annotations

import atexit
from enum import Enum
from pathlib import Path

import numpy as np

from hpv.compiler.web import blob
from hpv.compiler.web.chromium import BrowserError, Chromium, chromium_version, ort_web_version, web_dir
from hpv.compiler.web.server import LocalServer
from hpv.errors import ArtifactRunError, ConfigError


class WebEP(str, Enum):
    WASM = "wasm"
    WEBGPU = "webgpu"  # the native WebGPU EP (ort.webgpu.min.mjs)

    @classmethod
    def parse(cls, text: str) -> WebEP:
        try:
            return cls(text)
        except ValueError:
            raise ConfigError(f"browser execution provider {text!r}: write one of "
                              f"{', '.join(e.value for e in cls)}") from None


class BrowserSession:
    """A local server, a Chromium and the onnxruntime-web harness page, ready for calls."""

    def __init__(self, ep: WebEP = WebEP.WASM, threads: int = 1):
        self.ep, self.threads = ep, threads
        folder = web_dir()
        self.server = LocalServer().__enter__()
        self.server.mount("/web/", folder)
        self._files: dict[Path, str] = {}
        try:
            self.browser = Chromium(webgpu=ep is WebEP.WEBGPU)
            self.browser.goto(self.server.url("/web/pages/ort-harness.html"))
            self.browser.eval("for (let i = 0; i < 200 && !window.hpvReady; i++) "
                              "await new Promise(r => setTimeout(r, 50)); return true;")
            self.info = self.browser.eval(f"return await hpvOrt.init({{ep: '{ep.value}', threads: {threads}}});")
        except BaseException:
            self.server.close()
            raise
        self.chromium = chromium_version()
        self.ort_web = self.info.get("ort") or ort_web_version(folder)

    @property
    def checked_on(self) -> str:
        """What ran the artifact: browser, its version, onnxruntime-web, EP, threads (and adapter)."""
        text = f"chromium {self.chromium} onnxruntime-web {self.ort_web} {self.ep.value}"
        if self.ep is WebEP.WASM:
            return text + f" {self.threads} thread" + "s" * (self.threads != 1)
        a = self.info.get("adapter") or {}
        kind = "fallback adapter" if a.get("isFallbackAdapter") else "adapter"
        return text + f" ({kind} {a.get('vendor') or '?'} {a.get('architecture') or a.get('description') or ''})".rstrip()

    def file_url(self, path: Path) -> str:
        """A URL for `path` (its folder is mounted once)."""
        folder = Path(path).resolve().parent
        if folder not in self._files:
            self._files[folder] = self.server.mount(f"/files/{len(self._files)}/", folder)
        return self._files[folder] + Path(path).name

    def call(self, model: Path, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run one call of `model`; returns its outputs and the in-page run time (ms)."""
        url = self.file_url(model)
        src = self.server.put_blob(blob.encode(feeds))
        slot = self.server.new_slot()
        try:
            self.browser.eval(f"return await hpvOrt.run({url!r}, {src!r}, {slot!r});")
            header, outs = blob.decode(self.server.take(slot))
        finally:
            self.server.drop_blob(src)
        return outs, float(header.get("ms", 0.0))

    def time(self, model: Path, feeds: dict[str, np.ndarray], runs: int, warmup: int) -> dict:
        """Timings of `runs` calls in the page after `warmup` (load_ms on a fresh session, first_ms)."""
        url = self.file_url(model)
        src = self.server.put_blob(blob.encode(feeds))
        try:
            return self.browser.eval(f"return await hpvOrt.time({url!r}, {src!r}, {runs}, {warmup});")
        finally:
            self.server.drop_blob(src)

    def release(self) -> None:
        self.browser.eval("await hpvOrt.release(); return true;")

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self.server.close()


_SESSIONS: dict[tuple[WebEP, int], BrowserSession] = {}


def shared_session(ep: WebEP = WebEP.WASM, threads: int = 1) -> BrowserSession:
    key = (ep, threads)
    s = _SESSIONS.get(key)
    if s is None or s.browser._proc.poll() is not None:
        s = _SESSIONS[key] = BrowserSession(ep, threads)
    return s


@atexit.register
def close_sessions() -> None:
    while _SESSIONS:
        _SESSIONS.popitem()[1].close()


def browser_runner(path: Path, ep: WebEP = WebEP.WASM, threads: int = 1):
    """A verification runner (feeds -> outputs) executing `path` in Chromium; `runner.checked_on`
    names what ran it."""
    from hpv.compiler.backends import get_backend
    from hpv.compiler.web.divergence import EPDivergenceError, diverges, first_divergence, limit_for
    from hpv.targets import get_target

    session = shared_session(ep, threads)
    path = Path(path)
    # Every call is also run in ONNX Runtime's CPU provider: an EP fault is then named at its first
    # diverging node instead of surfacing as a low PSNR against PyTorch.
    native = get_backend("onnx").runner(path, get_target("onnx-cpu"))

    def in_browser(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return session.call(model, feeds)[0]
        except BrowserError as e:
            raise ArtifactRunError(f"{model.name} failed in Chromium on onnxruntime-web's {ep.value} EP: "
                                   f"{str(e)[:400]}") from None

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = in_browser(path, feeds)
        ref = native(feeds)
        bad = [k for k in ref if diverges(outs[k], ref[k])]
        if bad:
            worst = max(((float(np.max(np.abs(outs[k].astype(np.float64) - ref[k]))), limit_for(ref[k])) for k in bad),
                        key=lambda el: el[0] / el[1])
            found = first_divergence(path, feeds, in_browser)
            raise EPDivergenceError(path.name, ep.value, found and found.node, found and found.op_type,
                                    found.error if found else worst[0], found.limit if found else worst[1],
                                    session.checked_on)
        return outs

    def locate_divergence(feeds: dict[str, np.ndarray]) -> None:
        """Raise EPDivergenceError naming the first node whose output on the EP departs from the
        CPU provider's on `feeds` (`first_divergence`); return when every intermediate agrees."""
        found = first_divergence(path, feeds, in_browser)
        if found is not None:
            raise EPDivergenceError(path.name, ep.value, found.node, found.op_type, found.error, found.limit,
                                    session.checked_on)

    run.checked_on = session.checked_on
    run.locate_divergence = locate_divergence
    return run


def parse_verified_on(text: str) -> tuple[WebEP, int] | None:
    """`chromium:wasm`, `chromium:wasm:2` (threads) or `chromium:webgpu` -> (EP, threads); None for
    anything that is not a browser."""
    kind, _, rest = text.partition(":")
    if kind != "chromium":
        return None
    ep, _, threads = (rest or "wasm").partition(":")
    return WebEP.parse(ep), int(threads) if threads else 1
