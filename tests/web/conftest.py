"""Browser tests: headless Chromium (Debian's `chromium`, which the README's test command installs)
driven by node + puppeteer-core from `web/` (installed with `npm ci` when node_modules is missing)."""

import shutil

import pytest


@pytest.fixture(scope="session")
def browser_ready():
    """Skips (saying what is missing) where Chromium, node or npm packages cannot be had."""
    pytest.importorskip("onnxruntime")
    from hpv.compiler.web.chromium import BrowserUnavailableError, ensure_packages, find_chromium, find_node

    try:
        find_chromium()
        find_node()
        if not shutil.which("npm"):
            raise BrowserUnavailableError("npm is missing")
        ensure_packages()
    except BrowserUnavailableError as e:
        pytest.skip(f"browser tests need Chromium, node and npm: {e}")
    return True


@pytest.fixture(scope="session")
def web():
    """The web/ package built (web/dist), for node tests: skips where node or its packages are missing."""
    from hpv.compiler.web.chromium import BrowserUnavailableError, build_package, web_dir

    if not shutil.which("node"):
        pytest.skip("the web package's tests need node (Node.js 20)")
    try:
        build_package()
    except BrowserUnavailableError as e:
        pytest.skip(f"the web package cannot be built here: {e}")
    return web_dir()


@pytest.fixture(scope="session")
def wasm_build(browser_ready, tmp_path_factory):
    """The default pipeline at --small size for onnx-wasm, verified in Chromium (fp32 and int8)."""
    from hpv.compiler.build import CompileRequest, compile

    out = tmp_path_factory.mktemp("wasm")
    return compile(CompileRequest(target="onnx-wasm", out=out, small=True))


def second_real_pose():
    """A second real .pose file (Jordanian fingerspelling from the `poses` extra's lexicon), or None."""
    from hpv.data.real_poses import real_pose_files

    files = real_pose_files()
    return files[len(files) // 2] if files else None


@pytest.fixture(params=["signer", "lexicon"])
def real_pose(request):
    """examples/signer.pose, and a second real file (skipped without the poses extra)."""
    from pathlib import Path

    if request.param == "signer":
        return Path(__file__).resolve().parents[2] / "examples" / "signer.pose"
    path = second_real_pose()
    if path is None:
        pytest.skip("a second real .pose file needs the poses extra (pip install -e '.[poses]')")
    return path
