"""The scheduler picks the best-quality configuration that holds the frame rate at p90 with headroom,
says why nothing does when nothing does, and writes a table an app can look up."""

from __future__ import annotations

import json

import jsonschema
import pytest

from hpv.errors import ConfigError, InfeasibleError, ProfileError
from hpv.runtime import ScheduleTable, describe, plan, plans_table
from hpv.runtime.table import SCHEMA_PATH, ConfigRecord, table_json_schema
from tests.profiles import factory

# factory.device(): fp32 costs 16 + 8k ms per frame (k=0..4), int8 30% less; p90 is ~4.7% over p50.


def with_pipelines(d, *extra):
    return d.model_copy(update={"pipelines": d.pipelines + list(extra)})


def chosen(p):
    c = p.config
    return c.precision, c.steps, c.resolution, c.batch


def test_more_steps_when_the_budget_allows():
    d = factory.device()
    assert chosen(plan(d, 20)) == ("fp32", 2, 768, 1)  # 42.5 ms budget: k=2 (33.5 ms p90)
    assert chosen(plan(d, 30)) == ("fp32", 1, 768, 1)  # 28.3 ms: k=2 no longer fits
    assert chosen(plan(d, 50)) == ("fp32", 0, 768, 1)


def test_equal_quality_goes_to_the_faster_then_fewer_steps():
    # k=2 and k=3 have the same PSNR; k=4 is worse. At 10 fps all fit: k=2 is the fastest of the best.
    p = plan(factory.device(), 10)
    assert chosen(p) == ("fp32", 2, 768, 1)
    assert p.runners_up[0].steps == 3  # same quality, slower


def test_lower_precision_when_it_wins_quality_in_the_budget():
    d = factory.device(precisions=("fp32", "int8"))
    # 21.2 ms at 40 fps: fp32 only fits k=0 (21.8 dB); int8 fits k=1 (24.0 dB)
    p = plan(d, 40)
    assert chosen(p) == ("int8", 1, 768, 1)
    assert p.expected_psnr_db == pytest.approx(24.02, abs=0.01)
    # 28.3 ms at 30 fps: fp32 k=1 (24.30 dB) beats int8 k=3 (24.11 dB) though int8 fits more steps
    assert chosen(plan(d, 30)) == ("fp32", 1, 768, 1)


def test_a_lower_resolution_variant_when_needed():
    small = [factory.pipeline(k, 6 + 4 * k, resolution=512, psnr=20 + k / 2, artifact_psnr=60) for k in range(3)]
    d = with_pipelines(factory.device(), *small)
    assert chosen(plan(d, 50)) == ("fp32", 0, 768, 1)  # 768 k=0 (21.8 dB) beats every 512 (at most 21 dB)
    p = plan(d, 60)  # 14.2 ms: no 768 configuration fits
    assert chosen(p) == ("fp32", 1, 512, 1)
    assert p.per_frame_p90_ms <= p.budget_ms and p.slack_ms == pytest.approx(p.budget_ms - p.per_frame_p90_ms)


def test_batch_only_when_allowed():
    # four sequences per call: 40% less per frame (artifact PSNR as the factory's fp32)
    batched = [factory.pipeline(k, (16 + 8 * k) * 0.6, batch=4, artifact_psnr=60) for k in range(5)]
    d = with_pipelines(factory.device(), *batched)
    assert chosen(plan(d, 30)) == ("fp32", 1, 768, 1)
    assert chosen(plan(d, 30, max_batch=2)) == ("fp32", 1, 768, 1)
    p = plan(d, 30, max_batch=4)
    assert chosen(p) == ("fp32", 2, 768, 4)
    assert p.per_frame_p90_ms == pytest.approx(p.config.latency.p90_ms / 4)
    assert all(c.batch == 4 for c in p.ladder)
    assert "batch 4" in plan(d, 30).reason  # what a larger batch would give


def test_first_frame_budget_limits_the_whole_call():
    batched = [factory.pipeline(k, (16 + 8 * k) * 0.6, batch=4, artifact_psnr=60) for k in range(5)]
    d = with_pipelines(factory.device(), *batched)
    # a batch-4 k=2 call takes ~80 ms: over a 65 ms first frame; the batch-4 k=1 call (~60 ms) fits
    p = plan(d, 30, max_batch=4, first_frame_ms=65)
    assert chosen(p) == ("fp32", 1, 768, 4) and p.config.latency.p90_ms <= 65
    assert chosen(plan(factory.device(), 20, first_frame_ms=30)) == ("fp32", 1, 768, 1)
    assert "first-frame" in plan(factory.device(), 20, first_frame_ms=30).reason


def test_configurations_without_quality_rank_below_and_by_fewer_ms():
    d = factory.device(max_steps=1)
    blind = [p.model_copy(update={"quality": None}) for p in factory.device(max_steps=3).pipelines]
    # k=1 has a quality figure, k=2 and k=3 do not: k=1 wins though all three fit
    mixed = d.model_copy(update={"pipelines": [d.pipelines[1]] + blind[2:]})
    assert chosen(plan(mixed, 20)) == ("fp32", 1, 768, 1)
    none_known = d.model_copy(update={"pipelines": blind})
    p = plan(none_known, 20)
    assert p.config.steps == 0 and p.expected_psnr_db is None


def test_ladder_goes_down_steps_then_resolution():
    small = [factory.pipeline(k, 6 + 4 * k, resolution=512, psnr=20 + k / 2, artifact_psnr=60) for k in range(3)]
    d = with_pipelines(factory.device(precisions=("fp32", "int8")), *small)
    p = plan(d, 20)
    assert [(c.precision, c.steps, c.resolution) for c in p.ladder] == [
        ("fp32", 2, 768), ("fp32", 1, 768), ("fp32", 0, 768), ("fp32", 2, 512), ("fp32", 1, 512), ("fp32", 0, 512)]
    costs = [c.per_frame_p90_ms for c in p.ladder]
    assert costs == sorted(costs, reverse=True)  # every level cheaper than the one above


def levels(p):
    return [(c.steps, c.parts, c.resolution) for c in p.ladder]


def top(p):
    return p.config.steps, p.config.parts, p.config.resolution


def test_ladder_drops_the_part_stages_first_then_steps_then_resolution():
    p = plan(factory.parts_device(), 20)  # 42.5 ms: everything fits; parts on at k=1 is the best (25.0 dB)
    assert top(p) == (1, True, 768)
    # k=0 with parts (23 ms) is cheaper than k=1 without (27 ms) but would draw them again: left out
    assert levels(p) == [(1, True, 768), (1, False, 768), (0, False, 768), (0, False, 512)]
    costs = [c.per_frame_p90_ms for c in p.ladder]
    assert costs == sorted(costs, reverse=True)
    assert levels(plan(factory.parts_device(), 28)) == [(1, False, 768), (0, False, 768), (0, False, 512)]


def test_the_quality_table_decides_whether_the_part_stages_are_worth_their_time():
    d = factory.parts_device()
    assert top(plan(d, 34)) == (0, True, 768)  # 25 ms: k=1 fits only without the parts
    # 30.4 ms: k=1 without the parts (24.3 dB) beats k=0 with them (22.5 dB)
    assert top(plan(d, 28)) == (1, False, 768)
    assert top(plan(d, 42)) == (0, False, 768)  # 20.2 ms: only k=0 without the parts fits at 768px
    assert describe(plan(d, 20).config) == "parts/fire_gen fp32 k=1 768px +parts"


def test_schedule_table_records_the_part_stages_of_every_level():
    row = ScheduleTable.model_validate(plans_table(factory.profile(factory.parts_device()), [20])).devices[0].rows[0]
    assert row.config.parts and [c.parts for c in row.ladder] == [True, False, False, False]
    assert ConfigRecord.model_validate_json(row.config.model_dump_json()) == row.config
    old = row.config.model_dump(mode="json")
    del old["parts"]  # a table written before the field: parts off
    assert ConfigRecord.model_validate(old).parts is False


def test_nothing_feasible_says_the_best_achievable_rate():
    d = factory.device(precisions=("fp32", "int8"))
    with pytest.raises(InfeasibleError) as e:
        plan(d, 100)
    fastest = min(p.per_frame_p90_ms for p in d.pipelines)
    assert e.value.best_fps == pytest.approx(0.85 * 1000 / fastest, abs=0.01)
    assert e.value.best == "default/fire_gen int8 k=0 768px"
    msg = str(e.value)
    assert "phone-a" in msg and "100 fps" in msg and f"{e.value.best_fps:.2f} fps" in msg
    assert "int8 k=0" in msg and "even with headroom 1" in msg
    plan(d, e.value.best_fps)  # the rate it names is feasible
    # a rate that a higher headroom reaches says which
    with pytest.raises(InfeasibleError, match=r"or use headroom 0\.9"):
        plan(d, 80)


def test_nothing_feasible_names_a_batch_that_would_hold_it():
    batched = [factory.pipeline(0, 8.0, batch=4, artifact_psnr=60)]
    with pytest.raises(InfeasibleError, match="batch 4"):
        plan(with_pipelines(factory.device(), *batched), 70)


def test_bad_options_and_profiles_without_pipelines():
    d = factory.device()
    for kwargs in ({"fps": 0}, {"fps": -5}, {"fps": 25, "headroom": 1.5}, {"fps": 25, "first_frame_ms": 0},
                   {"fps": 25, "max_batch": 0}):
        with pytest.raises(ConfigError):
            plan(d, **kwargs)
    with pytest.raises(ProfileError, match="no pipeline measurements"):
        plan(d.model_copy(update={"pipelines": []}), 25)


def test_plans_table_rows_and_lookup():
    slow = factory.device("phone-b", step_ms=14, gen_ms=10, up_ms=15)
    raw = plans_table(factory.profile(factory.device(), slow), [60, 10, 25, 40])
    jsonschema.validate(raw, table_json_schema())
    table = ScheduleTable.model_validate(json.loads(json.dumps(raw)))
    a, b = table.devices
    assert [r.fps for r in a.rows] == [10, 25, 40, 60]
    assert [r.feasible for r in b.rows] == [True, True, False, False]
    assert b.max_fps == pytest.approx(32.70, abs=0.01)
    for r in b.rows[2:]:
        assert r.config is None and r.best_fps == b.max_fps and "best achievable" in r.reason
    row = a.rows[1]
    assert (row.config.steps, row.budget_ms) == (2, 34.0) and row.ladder[0] == row.config
    # the lookup takes the lowest row at or above the rate asked for: its plan holds a tighter budget
    assert table.lookup("phone-a", 24).fps == 25
    assert table.lookup("phone-a", 25).fps == 25
    assert table.lookup("phone-a", 61) is None
    with pytest.raises(ProfileError, match="phone-a, phone-b"):
        table.lookup("phone-c", 25)


def test_plans_table_feasibility_is_monotone_in_fps():
    raw = plans_table(factory.profile(factory.device(precisions=("fp32", "int8"))), range(5, 121, 5))
    rows = raw["devices"][0]["rows"]
    feasible = [r["feasible"] for r in rows]
    assert feasible == sorted(feasible, reverse=True) and not feasible[-1]
    costs = [r["config"]["per_frame_p90_ms"] for r in rows if r["feasible"]]
    assert all(r["config"]["per_frame_p90_ms"] <= r["budget_ms"] for r in rows if r["feasible"])
    assert costs == sorted(costs, reverse=True)


def test_schema_file_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == table_json_schema()


def test_describe():
    assert describe(factory.pipeline(3, 10, precision="int8", batch=2, resolution=512)) == \
        "default/fire_gen int8 k=3 512px batch 2"
