"""`hpv serve`: a demo page on localhost that plays a `.pose` file through the web runtime."""

from __future__ import annotations

from pathlib import Path

import click

from hpv.cli.common import console, handle_errors

REPO_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "signer.pose"


def demo_server(build: Path, pose: Path | None, port: int = 0):
    """A started LocalServer with the demo page at "/", the build at /build/ and the pose file
    (if any) at /pose/default.pose."""
    from hpv.artifacts.manifest import load_manifest
    from hpv.compiler.web.chromium import build_package, web_dir
    from hpv.compiler.web.server import LocalServer

    load_manifest(build)  # a folder that is not a build stops here, with the reason
    build_package()
    try:
        server = LocalServer(port=port)
    except OSError as e:
        from hpv.errors import ConfigError

        raise ConfigError(f"cannot serve on 127.0.0.1:{port}: {e.strerror or e}; pick another --port (0: any free port)") from None
    server.mount("/web/", web_dir())
    server.mount("/build/", build)
    if pose is not None:
        from hpv.pose.reader import read_pose

        read_pose(pose)  # a corrupt file is refused here, not in the page
        server.serve_file("/pose/default.pose", pose)
    server.index = "/web/pages/demo.html"
    return server.__enter__()


@click.command(name="serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="ARTIFACTS_DIR")
@click.option("--pose", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the .pose file the page plays first (default: examples/signer.pose of a checkout); "
                   "the page also takes a file picked or dropped")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port")
@handle_errors
def serve_command(build: Path, pose: Path | None, port: int) -> None:
    """Serve a demo on http://127.0.0.1:PORT that plays a .pose file through the web runtime
    (onnxruntime-web, wasm) from the build ARTIFACTS_DIR, with an fps / k overlay. Ctrl-C stops it."""
    import threading

    pose = pose or (REPO_EXAMPLE if REPO_EXAMPLE.is_file() else None)
    server = demo_server(build, pose, port)
    console.print(f"serving {build} on {server.origin}/ (the pose viewer; Ctrl-C stops)", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
