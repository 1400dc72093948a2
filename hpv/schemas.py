"""JSON Schema files for the project's file formats (manifest, device profile, schedule table):
one way to derive them from the pydantic models and to write them beside their modules."""

from __future__ import annotations

import json
from pathlib import Path

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model, title: str) -> dict:
    schema = model.model_json_schema()
    schema["$schema"] = DRAFT
    schema["title"] = title
    return schema


def write_json_schema(schema: dict, path: Path) -> None:
    from hpv.atomic import write_text

    write_text(path, json.dumps(schema, indent=2) + "\n")
