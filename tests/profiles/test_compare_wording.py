"""`hpv compare`'s text says what it computed: the quantile compared (the lower quartile by default,
not "medians"), and for paired rounds the ratio rule."""

from __future__ import annotations

from click.testing import CliRunner

from hpv.cli.compare import compare_command
from hpv.profiles.compare import compare, quantile_name, to_markdown
from hpv.profiles.schema import write_profile
from tests.profiles import factory


def flat(text: str) -> str:
    return " ".join(text.split())


def test_quantile_names():
    assert quantile_name(0.25) == "lower quartile (q25)"
    assert quantile_name(0.5) == "median"
    assert quantile_name(0.9) == "q90"


def test_markdown_names_the_lower_quartile_it_compares():
    p = factory.profile(factory.device("phone-a"))
    md = flat(to_markdown(compare(p, p)))
    assert "median" not in md.replace("the median of its rounds'", "")
    assert "each configuration's lower quartile (q25)" in md
    assert "10% of the baseline's q25" in md
    md = flat(to_markdown(compare(p, p, quantile=0.5)))
    assert "each configuration's median" in md and "of the baseline's median" in md


def test_markdown_of_paired_rounds_states_the_ratio_rule():
    d = factory.device("phone-a")
    d = d.model_copy(update={"pairing": "run-1", "pipelines": []})
    rounds = {"rounds": 10}
    arts = [a.model_copy(update={"latency": a.latency.model_copy(update=rounds)}) for a in d.artifacts]
    p = factory.profile(d.model_copy(update={"artifacts": arts}))
    md = flat(to_markdown(compare(p, p)))
    assert "Every configuration was measured in the same rounds and is judged by the round-by-round ratio" in md
    assert "low end exceeds 1.1" in md
    assert "near ends" not in md


def test_terminal_table_title_names_the_quantile(tmp_path):
    p = factory.profile(factory.device("phone-a"))
    path = tmp_path / "p.json"
    write_profile(path, p)
    r = CliRunner().invoke(compare_command, [str(path), str(path)])
    assert r.exit_code == 0, r.output
    assert "latency per call, ms: lower quartile (q25) and its 95% interval" in r.output
    assert "q25%" not in r.output
