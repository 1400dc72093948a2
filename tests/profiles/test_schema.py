"""The device profile format: the committed JSON Schema is current, profiles validate on read,
and merging keeps one entry per device and target."""

import json

import jsonschema
import pytest

from hpv.errors import ProfileError
from hpv.profiles.schema import (
    SCHEMA_PATH, LatencyStats, expected_psnr, load_profile, merge, profile_json_schema, write_profile,
)
from tests.profiles import factory


def test_committed_schema_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == profile_json_schema()


def test_written_profile_validates_against_the_schema(tmp_path):
    path = write_profile(tmp_path / "p.json", factory.profile(factory.device(precisions=("fp32", "int8"))))
    jsonschema.validate(json.loads(path.read_text()), profile_json_schema())
    assert load_profile(path).devices[0].device.id == "phone-a"


@pytest.mark.parametrize("text, message", [
    ("{", "invalid"), ('{"schema_version": 2, "generator": "x", "devices": []}', "invalid"),
])
def test_bad_profiles_are_refused_on_read(tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_merge_keeps_one_entry_per_device_and_target():
    a, b = factory.device("phone-a"), factory.device("phone-b")
    newer = factory.device("phone-a", step_ms=5.0)
    merged = merge([factory.profile(a, b), factory.profile(newer)])
    assert [d.device.id for d in merged.devices] == ["phone-a", "phone-b"]
    assert merged.devices[0].pipelines[1].latency.p50_ms == pytest.approx(6 + 5 + 10)


def test_part_stages_round_trip_and_profiles_written_before_them_load_without(tmp_path):
    d = factory.device()
    d = d.model_copy(update={"pipelines": [factory.pipeline(1, 30.0, name="parts", parts=True), *d.pipelines]})
    path = write_profile(tmp_path / "p.json", factory.profile(d))
    assert load_profile(path).devices[0] == d and d.pipelines[0].parts and not d.pipelines[1].parts
    raw = json.loads(path.read_text())
    for p in raw["devices"][0]["pipelines"]:
        del p["parts"]
    path.write_text(json.dumps(raw))
    assert not any(p.parts for p in load_profile(path).devices[0].pipelines)


def test_latency_order_is_checked():
    with pytest.raises(ValueError):
        LatencyStats(runs=1, warmup=0, p50_ms=5, p90_ms=4, p99_ms=6, mean_ms=5, min_ms=1)


def test_expected_psnr_adds_the_errors():
    assert expected_psnr(24.0, None) == 24.0
    assert expected_psnr(24.0, 24.0) == pytest.approx(24.0 - 3.0103, abs=1e-3)
    assert 23.85 < expected_psnr(24.0, 40.0) < 24.0  # a compression error 16 dB below costs ~0.1 dB


def _set(data: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[int(key)] if key.isdigit() else data[key]
    data[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize("path, value, message", [
    ("devices.0.artifacts.0.latency.samples_ms.3", float("nan"), "finite number"),
    ("devices.0.artifacts.0.latency.p99_ms", float("inf"), "finite number"),
    ("devices.0.artifacts.0.latency.samples_ms.0", -2.5, "greater than or equal to 0"),
    ("devices.0.artifacts.0.latency.samples_ms.0", 1e12, "less than or equal to 3600000"),
    ("devices.0.pipelines.0.quality.psnr_db", float("nan"), "finite number"),
    ("devices.0.pipelines.0.quality.ssim", 2.0, "less than or equal to 1"),
    ("devices.0.artifacts.0.verification_psnr_db", float("-inf"), "finite number"),
])
def test_garbage_figures_are_refused_on_read_naming_file_and_field(tmp_path, path, value, message):
    """NaN, infinite, negative or absurd figures (as JSON's NaN / Infinity tokens) never load."""
    data = factory.profile().model_dump(mode="json")
    _set(data, path, value)
    bad = tmp_path / "garbage.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileError) as e:
        load_profile(bad)
    text = " ".join(str(e.value).split())
    assert str(bad) in text and path in text and message in text


def test_a_profile_file_without_devices_is_refused_on_read(tmp_path):
    from hpv.errors import ProfileError
    from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, load_profile

    path = tmp_path / "empty.json"
    path.write_text(f'{{"schema_version": {PROFILE_SCHEMA_VERSION}, "generator": "x", "devices": []}}')
    with pytest.raises(ProfileError, match="holds no devices"):
        load_profile(path)
