"""The shipped quality table as the profiler and scheduler read it: the looks figure, not the
full-frame PSNR, is what configurations are ranked by."""

import json

from hpv.profiles.quality import QUALITY_TABLE, load_quality_table, quality_record


def test_looks_figure_ranks_not_full_frame_psnr():
    table = {"p": {"source": "test", "steps": {
        "0": {"psnr_db": 30.0, "looks_db": 18.0, "person_psnr_db": 20.0, "hand_psnr_db": 16.0,
              "silhouette_iou": 0.9},
        "1": {"psnr_db": 29.0, "looks_db": 22.0, "person_psnr_db": 23.0, "hand_psnr_db": 21.0,
              "silhouette_iou": 0.97},
    }}}
    q0, q1 = quality_record("p", 0, None, table), quality_record("p", 1, None, table)
    assert q0.psnr_db == 18.0 and q1.psnr_db == 22.0
    assert q1.expected_psnr_db > q0.expected_psnr_db  # the better person and hands win
    assert q1.hand_psnr_db == 21.0 and q1.silhouette_iou == 0.97
    # compression error lowers the expectation (the MSEs add)
    assert quality_record("p", 1, 25.0, table).expected_psnr_db < q1.expected_psnr_db


def test_old_tables_still_read():
    q = quality_record("p", 0, None, {"p": {"source": "old", "steps": {"0": {"psnr_db": 24.0}}}})
    assert q.psnr_db == 24.0 and q.hand_psnr_db is None


def test_a_pipeline_with_part_stages_without_them_reads_steps_without_parts():
    table = {"p": {"source": "test", "steps": {"1": {"psnr_db": 26.0, "looks_db": 23.0}},
                   "steps_without_parts": {"1": {"psnr_db": 25.0, "looks_db": 22.0}}}}
    assert quality_record("p", 1, None, table).psnr_db == 23.0
    assert quality_record("p", 1, None, table, without_parts=True).psnr_db == 22.0
    assert quality_record("p", 0, None, table, without_parts=True) is None
    assert quality_record("p", 1, None, {"p": {"steps": table["p"]["steps"]}}, without_parts=True) is None


def test_shipped_table_has_looks_figures_for_every_step_of_the_default():
    from hpv.pipelines import PIPELINES

    table = load_quality_table()
    assert QUALITY_TABLE.is_file(), "ship hpv/stages/weights/quality.json (bench/quality.py --write-table)"
    steps = table["default"]["steps"]
    assert set(steps) == {str(k) for k in range(PIPELINES.get("default").max_steps + 1)}
    for entry in steps.values():
        for key in ("looks_db", "silhouette_iou", "person_psnr_db", "hand_psnr_db", "face_psnr_db"):
            assert isinstance(entry[key], float) and entry[key] == entry[key], (key, json.dumps(entry))


def test_best_steps_is_the_best_looks_within_reach_ties_to_fewer():
    from hpv.profiles.quality import best_steps

    table = {"p": {"steps": {"0": {"looks_db": 20.0}, "1": {"looks_db": 22.0}, "2": {"looks_db": 22.0},
                             "3": {"looks_db": 25.0}}}}
    assert best_steps("p", 2, table) == 1
    assert best_steps("p", 3, table) == 3
    assert best_steps("other", 3, table) is None
