import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_extras_have_no_conflicting_requirements():
    """The extras installed together (CI installs `.[all,test]`) leave pip's dependency check clean:
    no extra downgrades what another needs."""
    run = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("Tests (what CI runs"):]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command_which_installs_every_extra_and_checks_them():
    command = _readme_test_command()
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [command]
    assert "pip install torch==2.13.0 -e '.[all,test]' && pip check && pytest" in command


def test_all_holds_every_extra_but_test():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (all_,) = extras["all"]
    named = set(re.fullmatch(r"hpv-compile\[(.*)\]", all_).group(1).split(","))
    assert named == set(extras) - {"all", "test"}


def test_the_pins_that_keep_tflite_and_coreml_installable_together():
    """xdsl 0.28 (under ai-edge-litert 2.3) requires typing-extensions < 4.13; pydantic >= 2.12 and
    cattrs >= 25.3 (under coremltools) require >= 4.14. Without these caps, installing one extra after
    the other breaks the first (pip check: 'xdsl ... requires typing-extensions<4.13')."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "pydantic>=2.6,<2.12" in project["dependencies"]
    assert "typing-extensions<4.13" in extras["tflite"]
    assert "cattrs<25.3" in extras["coreml"]
