"""A small HTTP server on 127.0.0.1 for pages that run onnxruntime-web.

Every response carries `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp`: without cross-origin isolation a page has no
SharedArrayBuffer and onnxruntime-web's wasm threads are off. Folders are mounted under URL
prefixes; binary blobs (a verification call's inputs, its outputs posted back) live in memory."""

from __future__ import annotations

import itertools
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".onnx": "application/octet-stream", ".pose": "application/octet-stream",
         ".html": "text/html; charset=utf-8", ".css": "text/css", ".map": "application/json"}


class LocalServer:
    """`with LocalServer() as s: s.mount("/web/", folder); s.url("/web/x.html")`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self._mounts: dict[str, Path] = {}
        self._blobs: dict[str, bytes] = {}
        self._posted: dict[str, bytes] = {}
        self._posted_cv = threading.Condition()
        self._ids = itertools.count()
        self.index: str | None = None  # where "/" redirects to (a demo page)
        self._aliases: dict[str, Path] = {}
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hpv-web-server", daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def mount(self, prefix: str, folder: Path) -> str:
        """Serve `folder` under `prefix` (which starts and ends with '/'); returns the prefix."""
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"mount prefix {prefix!r}: write it as '/name/'")
        self._mounts[prefix] = Path(folder).resolve()
        return prefix

    def serve_file(self, path: str, file: Path) -> str:
        """Serve one file at `path` (e.g. /pose/default.pose); returns the path."""
        self._aliases[path] = Path(file).resolve()
        return path

    def put_blob(self, data: bytes) -> str:
        """Keep `data` in memory; returns the path a page fetches it from (once or more)."""
        key = f"b{next(self._ids)}"
        self._blobs[key] = data
        return f"/blob/{key}"

    def drop_blob(self, path: str) -> None:
        self._blobs.pop(path.rsplit("/", 1)[-1], None)

    def new_slot(self) -> str:
        """A path a page POSTs a result to; `take(path)` returns the body."""
        return f"/post/p{next(self._ids)}"

    def take(self, slot: str, timeout: float = 120.0) -> bytes:
        key = slot.rsplit("/", 1)[-1]
        with self._posted_cv:
            if not self._posted_cv.wait_for(lambda: key in self._posted, timeout):
                raise TimeoutError(f"no result was posted to {slot} within {timeout:.0f} s")
            return self._posted.pop(key)

    def _resolve(self, path: str) -> Path | None:
        if path in self._aliases:
            return self._aliases[path]
        for prefix, folder in sorted(self._mounts.items(), key=lambda kv: -len(kv[0])):
            if path.startswith(prefix):
                target = (folder / path[len(prefix):]).resolve()
                if target == folder or folder in target.parents:
                    return target
        return None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):  # quiet: the page's console is what matters
                pass

            def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                for k, v in ISOLATION_HEADERS.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/blob/"):
                    blob = server._blobs.get(path[len("/blob/"):])
                    return self._send(200, blob, "application/octet-stream") if blob is not None \
                        else self._send(404, b"no such blob")
                if path == "/":
                    index = server.index
                    if index:
                        self.send_response(HTTPStatus.FOUND)
                        self.send_header("Location", index)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                file = server._resolve(path)
                if file is not None and file.is_dir():
                    file = file / "index.html"
                if file is None or not file.is_file():
                    return self._send(404, f"not found: {path}".encode())
                ctype = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return self._send(200, file.read_bytes(), ctype)

            do_HEAD = do_GET

            def do_POST(self):
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if not path.startswith("/post/"):
                    return self._send(404, b"post to a slot")
                with server._posted_cv:
                    server._posted[path[len("/post/"):]] = body
                    server._posted_cv.notify_all()
                return self._send(200, b"ok")

        return Handler

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
