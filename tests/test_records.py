"""common.records on pydantic: the one ValidationError -> UserError converter, the typed sections of
patch.json, and the JSON Schemas published in docs/schema/ (equal to the models', and accepting
the files the tool writes)."""
from __future__ import annotations

import json

import pytest

from common.errors import UserError
from common.records import MarkerInfo, PatchRecord, SheetInfo
from scripts.write_schemas import FOLDER, SCHEMAS, schema_text

SHEET = {"page_size_mm": [210.0, 297.0], "pages": 1, "layout": "grid", "aruco_dictionary": "DICT_4X4_50",
         "blocks": [{"page": 0, "x_mm": 10.0, "y_mm": 20.0, "size_mm": 50.0, "width_mm": 50.0, "height_mm": 50.0,
                     "patch_size_mm": 50.0, "tile": [1, 1],
                     "markers": [{"id": 3, "x_mm": 1.0, "y_mm": 2.0, "size_mm": 8.0, "spot": "top_left"}]}]}


def _with(doc, path: list, value):
    doc = json.loads(json.dumps(doc))
    at = doc
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    return doc


@pytest.mark.parametrize("path, value, says", [
    (["blocks", 0, "size_mm"], True, "sheet.json: field blocks[0].size_mm must be a number, not true/false"),
    (["blocks", 0, "tile"], [1, 1, 1], "sheet.json: field blocks[0].tile must hold 2 values, not 3"),
    (["blocks", 0, "tile", 1], 1.5, "sheet.json: field blocks[0].tile[1] must be a whole number, not a number"),
    (["blocks", 0, "markers", 0, "x_mm"], "1", "sheet.json: field blocks[0].markers[0].x_mm must be a number, not text"),
    (["blocks", 0, "markers"], {}, "sheet.json: field blocks[0].markers must be a list, not an object"),
    (["blocks", 0, "markers", 0, "id"], 70, "sheet.json: field blocks[0].markers[0].id must be from 0 to 49"),  # a rule
    (["blocks", 0, "layout"], None, "sheet.json: field blocks[0].layout"),  # unknown key: kept, not an error
    (["pages"], "1", "sheet.json: field pages must be a whole number, not text"),
], ids=lambda v: str(v)[:24])
def test_validation_errors_are_one_line_naming_the_file_and_the_field(path, value, says):
    doc = _with(SHEET, path, value)
    if path[-1] == "layout":  # the control: the same converter, a file that is fine
        assert SheetInfo.parse(doc, "sheet.json").blocks[0].extra == {"layout": None}
        return
    with pytest.raises(UserError) as e:
        SheetInfo.parse(doc, "sheet.json")
    assert str(e.value).startswith(says) and "\n" not in str(e.value), str(e.value)


def test_missing_fields_and_files_that_are_not_objects_are_named():
    block = {k: v for k, v in SHEET["blocks"][0].items() if k not in ("size_mm", "width_mm")}
    with pytest.raises(UserError, match=r"^s.json: field blocks\[0\] has no width_mm"):
        SheetInfo.parse({**SHEET, "blocks": [block]}, "s.json")
    with pytest.raises(UserError, match=r"^s.json: field blocks is missing"):
        SheetInfo.parse({k: v for k, v in SHEET.items() if k != "blocks"}, "s.json")
    with pytest.raises(UserError, match=r"^s.json is not a sheet from `blocks print` \(bad or missing field"):
        SheetInfo.parse([1], "s.json")


def test_strict_when_read_lenient_when_built():
    """A file is read strictly (true is no id); the tool's own values are taken as given, a tuple
    or a list alike, by position as the dataclasses took them."""
    with pytest.raises(ValueError):
        MarkerInfo.from_json({"id": True, "x_mm": 1.0, "y_mm": 2.0, "size_mm": 8.0})
    assert MarkerInfo(3, 1, 2.0, 8.0, "left").x_mm == 1.0
    assert SheetInfo.from_json(SHEET) == SheetInfo.from_json(SheetInfo.from_json(SHEET).to_json())


def test_patch_json_sections_are_typed_and_keep_what_they_do_not_name():
    doc = {"eot_settings": {"held": {"coverage": [0.2, 0.5], "warmup": 0.1}, "placement": {"scale": [0.3, 0.6]}},
           "held_out": {"success_rate": 0.5, "n": 8, "works_from": 0.3, "views": {"eot": "held"}},
           "reach": {"distance_m": 2.0, "size_mm": 120, "fov_deg": 70.0, "band_m": [1.5, 2.5], "success": 0.5},
           "config": {"patch_size": 32, "epsilon": 0.1, "momentum": 0.9}}
    rec = PatchRecord.parse(doc, "patch.json")
    assert rec.eot_settings.held.coverage == (0.2, 0.5) and rec.held_out.works_from == 0.3
    assert rec.reach.band_m == (1.5, 2.5) and rec.reach.size_mm == 120.0 and rec.config.patch_size == 32
    assert rec.eot_settings.extra == {"placement": {"scale": [0.3, 0.6]}} and rec.held_out.get("views") == {"eot": "held"}
    assert rec.to_json()["config"] == {**doc["config"], "seed": None, "steps": None}
    with pytest.raises(UserError, match=r"^patch.json: field eot_settings.held.coverage\[0\] must be a number, not text"):
        PatchRecord.parse(_with(doc, ["eot_settings", "held", "coverage", 0], "0.2"), "patch.json")
    with pytest.raises(UserError, match=r"^patch.json: field held_out.n must be a whole number, not true/false"):
        PatchRecord.parse(_with(doc, ["held_out", "n"], True), "patch.json")


# --- the published JSON Schemas -----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schemas_are_what_the_models_generate(name):
    assert (FOLDER / name).read_text() == schema_text(SCHEMAS[name]), "run scripts/write_schemas.py"


def schema_errors(value, schema: dict, root: dict, at: str = "") -> list[str]:
    """The subset of JSON Schema 2020-12 the published files use (jsonschema is not a dependency)."""
    if "$ref" in schema:
        return schema_errors(value, root["$defs"][schema["$ref"].split("/")[-1]], root, at)
    if "anyOf" in schema:
        tries = [schema_errors(value, s, root, at) for s in schema["anyOf"]]
        return [] if any(not t for t in tries) else min(tries, key=len)
    kinds = {"object": dict, "array": list, "string": str, "null": type(None), "boolean": bool}
    want = schema.get("type")
    for kind in ([want] if isinstance(want, str) else want or []):
        if kind in ("number", "integer"):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and (kind == "number" or isinstance(value, int)))
        else:
            ok = isinstance(value, kinds[kind])
        if ok:
            break
    else:
        if want:
            return [f"{at}: {value!r} is not {want}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in enum")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", -float("inf")) or value > schema.get("maximum", float("inf")):
            errors.append(f"{at}: {value} out of range")
    if isinstance(value, dict):
        errors += [f"{at}.{k}: missing" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in schema.get("properties", {}):
                errors += schema_errors(v, schema["properties"][k], root, f"{at}.{k}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{at}: {len(value)} items")
        prefix = schema.get("prefixItems", [])
        for i, v in enumerate(value):
            item = prefix[i] if i < len(prefix) else schema.get("items", {})
            errors += schema_errors(v, item, root, f"{at}[{i}]")
    return errors


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A patch.json (generate --distance: reach and the held coverage filled) and the sheet.json
    of printing it, as the tool writes them."""
    from blocks.cli import run

    d = tmp_path_factory.mktemp("schema")
    assert run(["generate", "--model", "digits", "--target", "7", "--steps", "1", "--eval-n", "4", "--batch", "2",
                "--distance", "0.5", "--size-mm", "120", "--fov", "70", "--out", str(d / "p")]) == 0
    assert run(["print", str(d / "p" / "patch.png"), "--out", str(d / "s.pdf")]) == 0
    return {"patch.schema.json": d / "p" / "patch.json", "sheet.schema.json": d / "s.json"}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_files_the_tool_writes_validate_against_the_published_schemas(name, written):
    schema = json.loads((FOLDER / name).read_text())
    doc = json.loads(written[name].read_text())
    assert "blocks" in doc or doc["reach"] and doc["eot_settings"]["held"]["coverage"], "no --distance fields"
    assert schema_errors(doc, schema, schema) == []
    broken = _with(doc, ["blocks", 0, "size_mm"] if "blocks" in doc else ["reach", "band_m"], "50")
    assert schema_errors(broken, schema, schema), "the schema check accepts anything"


def test_schema_check_sees_a_bool_and_a_short_list():
    schema = json.loads((FOLDER / "sheet.schema.json").read_text())
    assert schema_errors(_with(SHEET, ["blocks", 0, "tile"], [1]), schema, schema)
    assert schema_errors(_with(SHEET, ["pages"], True), schema, schema)
    assert schema_errors(SHEET, schema, schema) == []
