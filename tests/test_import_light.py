import subprocess
import sys

HEAVY = ["torch", "onnx", "onnxruntime", "onnxscript", "coremltools", "litert_torch", "cv2"]


def test_import_hpv_stays_light():
    code = (
        "import sys, hpv, hpv.errors, hpv.registry, hpv.targets, hpv.pose, hpv.cli.main\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
