"""Write the JSON Schema of patch.json and sheet.json to docs/schema/, from the records' models.

    python scripts/write_schemas.py          # after changing common/records; tests/test_records.py
                                             # fails while the published files differ
"""
from __future__ import annotations

import json
from pathlib import Path

from common.records import PatchRecord, SheetInfo
from common.records.base import json_schema

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "schema"
SCHEMAS = {"patch.schema.json": PatchRecord, "sheet.schema.json": SheetInfo}


def schema_text(cls) -> str:
    return json.dumps(json_schema(cls), indent=2, sort_keys=True) + "\n"


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, cls in SCHEMAS.items():
        (FOLDER / name).write_text(schema_text(cls))
        print(f"wrote {FOLDER / name}")


if __name__ == "__main__":
    main()
