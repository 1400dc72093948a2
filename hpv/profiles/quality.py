"""The shipped quality table: PSNR / SSIM / flicker against ground truth per pipeline and
refinement step k, measured by `python bench/quality.py --write-table` on the test split with the
shipped weights. The profiler joins it with each build's verification PSNR."""

from __future__ import annotations

import json
from pathlib import Path

from hpv.profiles.schema import QualityRecord, expected_psnr

QUALITY_TABLE = Path(__file__).resolve().parents[1] / "stages" / "weights" / "quality.json"


def load_quality_table(path: Path = QUALITY_TABLE) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def quality_record(pipeline: str, k: int, artifact_psnr_db: float | None, table: dict | None = None) -> QualityRecord | None:
    """Expected quality of `pipeline` at k steps when its artifacts differ from PyTorch by
    artifact_psnr_db; None when the table has no figure for it."""
    table = load_quality_table() if table is None else table
    entry = table.get(pipeline, {}).get("steps", {}).get(str(k))
    if entry is None:
        return None
    return QualityRecord(psnr_db=entry["psnr_db"], ssim=entry.get("ssim"), flicker=entry.get("flicker"),
                         artifact_psnr_db=artifact_psnr_db,
                         expected_psnr_db=round(expected_psnr(entry["psnr_db"], artifact_psnr_db), 3),
                         source=table[pipeline].get("source", "quality table"))
