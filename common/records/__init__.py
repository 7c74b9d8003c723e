"""Every JSON file a command writes, as a typed record: the record is exactly what goes to disk.

    PatchRecord       patch.json      `blocks generate` (one per target)        records/patch.py
    GenerateSummary   summary.json    `blocks generate` with several targets    records/patch.py
    SheetInfo         sheet.json      `blocks print` (BlockInfo, MarkerInfo)    records/sheet.py
    CalibrationInfo   calib.json      `blocks calibration-sheet` (a SheetInfo with swatches)
    ColorMapRecord    colormap.json   `blocks calibrate` (transforms.colormap.ColorMap holds it as tensors)
    CaptureSummary    --summary       `blocks capture`                          records/runs.py
    OnePixelSummary   summary.json    `blocks onepixel`
    EvaluateReport    --out / stdout  `blocks evaluate` (EvaluateRow per model with several models)
    SweepRecord       sweep.json      `blocks sweep`
    SimulateInfo      (printed only)  `blocks simulate` writes a video, no JSON: this is what it did
    ScenesInfo        scenes.json     `blocks sample-scenes` / `blocks digits-scenes`

Each is a pydantic v2 model (records/base.py): one write/read pair for all of them (Record.write /
Record.read), written atomically, NaN or infinity refused (common.files.json_text), and every
record carries a `version`. Keys a reader does not know are kept (`extra`) and written back, so
read -> write round-trips a file unchanged; a file of a newer version is refused.

Read back, a file is validated strictly (true is not a number, "50" is not a number), with ranges
and choices per field and the rules between fields in the record's own `check` (a marker id within
the sheet's ArUco dictionary, a block on its page, a swatch inside its field, a colour map's curves
all of one length); any problem is one UserError line naming the file and the field. The JSON
Schema of patch.json and sheet.json is published in docs/schema/ (scripts/write_schemas.py).
"""
from common.records.base import VERSION, FieldError, Part, Record, user_error
from common.records.colormap import ColorMapRecord
from common.records.patch import (EotSettings, GenerateRow, GenerateSummary, HeldOut, HeldSettings, PatchRecord, Reach,
                                  ResumedFrom, RunConfig)
from common.records.runs import (CaptureSummary, EvaluateReport, EvaluateRow, OnePixelRow, OnePixelSummary,
                                 ScenesInfo, SimulateInfo, SweepRecord)
from common.records.sheet import (ARUCO_IDS, CORNERS, MARKER_SPOTS, PAGE_MM, PRINTED_MM, BlockInfo, CalibrationInfo,
                                  MarkerInfo, SheetInfo, SwatchInfo, sheet_json, sidecar_path)

__all__ = ["ARUCO_IDS", "CORNERS", "MARKER_SPOTS", "PAGE_MM", "PRINTED_MM", "VERSION", "BlockInfo", "CalibrationInfo",
           "CaptureSummary", "ColorMapRecord", "EotSettings", "EvaluateReport", "EvaluateRow", "FieldError",
           "GenerateRow", "GenerateSummary", "HeldOut", "HeldSettings", "MarkerInfo", "OnePixelRow", "OnePixelSummary",
           "Part", "PatchRecord", "Reach", "Record", "ResumedFrom", "RunConfig", "ScenesInfo", "SheetInfo",
           "SimulateInfo", "SwatchInfo", "SweepRecord", "sheet_json", "sidecar_path", "user_error"]
