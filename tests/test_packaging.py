import subprocess
import sys


def test_installed_extras_have_no_conflicting_requirements():
    """The extras installed together (CI installs onnx, tflite, coreml, video and test) leave pip's
    dependency check clean: no extra downgrades what another needs."""
    run = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
