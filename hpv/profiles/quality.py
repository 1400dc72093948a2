"""The shipped quality table: looks figures against ground truth per pipeline and refinement step k
(silhouette IoU, person PSNR / SSIM, hand- and face-box PSNR, flicker, and `looks_db`, the mean of
person and hand PSNR that the scheduler ranks by; for a pipeline with part stages, under "steps" with
them drawn and under "steps_without_parts" without), measured by `python bench/quality.py
--write-table` on the test split with the shipped weights. The profiler joins it with each build's
verification PSNR."""

from __future__ import annotations

import json
from pathlib import Path

from hpv.profiles.schema import QualityRecord, expected_psnr

QUALITY_TABLE = Path(__file__).resolve().parents[1] / "stages" / "weights" / "quality.json"


def load_quality_table(path: Path = QUALITY_TABLE) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def quality_record(pipeline: str, k: int, artifact_psnr_db: float | None, table: dict | None = None, *,
                   without_parts: bool = False) -> QualityRecord | None:
    """Expected quality of `pipeline` at k steps when its artifacts differ from PyTorch by
    artifact_psnr_db; None when the table has no figure for it. A pipeline's "steps" are as it is
    built (with its part stages, where it has them); `without_parts`: a pipeline with part stages
    run without them, the table's "steps_without_parts"."""
    table = load_quality_table() if table is None else table
    entry = table.get(pipeline, {}).get("steps_without_parts" if without_parts else "steps", {}).get(str(k))
    if entry is None:
        return None
    base = entry.get("looks_db", entry["psnr_db"])  # the person and the hands, not the background
    return QualityRecord(psnr_db=base, ssim=entry.get("person_ssim", entry.get("ssim")), flicker=entry.get("flicker"),
                         silhouette_iou=entry.get("silhouette_iou"), person_psnr_db=entry.get("person_psnr_db"),
                         hand_psnr_db=entry.get("hand_psnr_db"), face_psnr_db=entry.get("face_psnr_db"),
                         artifact_psnr_db=artifact_psnr_db,
                         expected_psnr_db=round(expected_psnr(base, artifact_psnr_db), 3),
                         source=table[pipeline].get("source", "quality table"))


def best_steps(pipeline: str, max_steps: int, table: dict | None = None) -> int | None:
    """The k in 0..max_steps with the best looks in the table (ties to fewer steps); None when the
    table has no figure for the pipeline."""
    table = load_quality_table() if table is None else table
    steps = table.get(pipeline, {}).get("steps", {})
    scored = [(v.get("looks_db", v.get("psnr_db")), -int(k)) for k, v in steps.items() if int(k) <= max_steps]
    scored = [s for s in scored if s[0] is not None]
    return -max(scored)[1] if scored else None
