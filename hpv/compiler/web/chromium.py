"""Headless Chromium driven by puppeteer-core (the repo's `web/` package, `web/tools/chromium.mjs`).

Nothing here downloads a browser: Chromium is Debian's `chromium` (or `$HPV_CHROMIUM`), and the
npm packages are installed from `web/package-lock.json` with `npm ci` when `web/node_modules` is
missing (the registry, nothing else)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from hpv.errors import HpvError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class BrowserUnavailableError(HpvError):
    """Chromium, node or the web package cannot be started here; the message says what to install."""


class BrowserError(HpvError):
    """The browser or the page failed a command (the page's own message, trimmed)."""


def web_dir() -> Path:
    """The repo's `web/` package (an editable install keeps it beside `hpv/`), or `$HPV_WEB_DIR`."""
    env = os.environ.get("HPV_WEB_DIR")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "web"
    if not (folder / "package.json").is_file():
        raise BrowserUnavailableError(
            f"the web runtime package is not at {folder}: browser targets need the repository checkout "
            "(pip install -e .) or HPV_WEB_DIR pointing at its web/ folder")
    return folder


def find_chromium() -> str:
    exe = os.environ.get("HPV_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not exe:
        raise BrowserUnavailableError("no Chromium found: apt-get install chromium (or set HPV_CHROMIUM "
                                      "to a Chromium or Chrome executable)")
    return exe


def find_node() -> str:
    node = shutil.which("node")
    if not node:
        raise BrowserUnavailableError("node is missing: install Node.js 20 or newer (apt-get install nodejs npm)")
    return node


def chromium_version(exe: str | None = None) -> str:
    """`Chromium 156.0.8078.114` -> `156.0.8078.114`."""
    out = subprocess.run([exe or find_chromium(), "--version"], capture_output=True, text=True, timeout=30).stdout
    return next((w for w in out.split() if w[:1].isdigit()), out.strip() or "unknown")


def ensure_packages(folder: Path | None = None) -> Path:
    """`web/node_modules` from the lockfile (`npm ci`, no browser download) when it is missing."""
    folder = folder or web_dir()
    pkg = json.loads((folder / "package.json").read_text())
    wanted = {**pkg.get("dependencies", {}), **pkg.get("devDependencies", {})}
    if all((folder / "node_modules" / name / "package.json").is_file() for name in wanted):
        return folder
    npm = shutil.which("npm")
    if not npm:
        raise BrowserUnavailableError(f"npm is missing, and {folder}/node_modules is not installed: install "
                                      "Node.js 20 with npm, or run `npm ci` in web/")
    env = os.environ | {"PUPPETEER_SKIP_DOWNLOAD": "1", "npm_config_fund": "false", "npm_config_audit": "false"}
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, env=env, capture_output=True,
                       text=True, timeout=900)
    if r.returncode:
        raise BrowserUnavailableError(f"`npm ci` in {folder} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    return folder


def ort_web_version(folder: Path | None = None) -> str:
    pkg = (folder or web_dir()) / "node_modules" / "onnxruntime-web" / "package.json"
    return json.loads(pkg.read_text())["version"]


class Chromium:
    """One headless Chromium with one page, commanded over the driver's stdin/stdout.

    `log`: where the page's console and the driver's stderr go (a file path), default the temp dir."""

    def __init__(self, *, webgpu: bool = False, log: Path | None = None, start_timeout: float = 90.0):
        folder = ensure_packages()
        exe = find_chromium()
        self.log_path = log or Path(tempfile.gettempdir()) / "hpv-chromium.log"
        self._log = open(self.log_path, "a", encoding="utf-8")
        env = os.environ | {"HPV_CHROMIUM": exe, "PUPPETEER_SKIP_DOWNLOAD": "1"}
        cmd = [find_node(), str(folder / "tools" / "chromium.mjs")] + (["--webgpu"] if webgpu else [])
        self._proc = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, text=True, bufsize=1)
        self._ids = 0
        self._lock = threading.Lock()
        hello = self._read(start_timeout)
        if not hello.get("ready"):
            self.close()
            raise BrowserUnavailableError(f"Chromium ({exe}) did not start: {hello.get('error', hello)}; "
                                          f"see {self.log_path}")
        self.version: str = hello["version"]  # e.g. "Chrome/156.0.8078.114" (headless)
        self.user_agent: str = hello["userAgent"]
        self.spawnargs: list[str] = hello.get("spawnargs", [])

    def _read(self, timeout: float) -> dict:
        result: list = []

        def reader():
            result.append(self._proc.stdout.readline())

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            self.close()
            raise BrowserError(f"Chromium's driver did not answer within {timeout:.0f} s; see {self.log_path}")
        line = result[0]
        if not line:
            code = self._proc.poll()
            raise BrowserError(f"Chromium's driver exited ({code}); see {self.log_path}")
        return json.loads(line)

    def command(self, cmd: str, timeout: float = 600.0, **kw):
        with self._lock:
            self._ids += 1
            msg = {"id": self._ids, "cmd": cmd, **kw}
            try:
                self._proc.stdin.write(json.dumps(msg) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise BrowserError(f"Chromium's driver is gone; see {self.log_path}") from None
            reply = self._read(timeout)
        if not reply.get("ok"):
            raise BrowserError(f"the browser failed {cmd}: {str(reply.get('error'))[:500]}")
        return reply.get("value")

    def goto(self, url: str) -> None:
        self.command("goto", url=url)

    def eval(self, body: str, timeout: float = 600.0):
        """Run an async function body in the page (`return x` gives x back, as JSON)."""
        return self.command("eval", timeout=timeout, expr=body)

    def screenshot(self, path: Path) -> Path:
        self.command("screenshot", path=str(Path(path).resolve()))
        return Path(path)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def build_package(folder: Path | None = None) -> Path:
    """Bundle `web/src` into `web/dist` (esbuild, well under a second); returns dist/."""
    folder = ensure_packages(folder)
    r = subprocess.run([find_node(), "build.mjs"], cwd=folder, capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise BrowserUnavailableError(f"building the web package failed: {r.stderr.strip()[-600:]}")
    return folder / "dist"
