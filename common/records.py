"""Every JSON file a command writes, as a typed record: the record is exactly what goes to disk.

    PatchRecord       patch.json      `blocks generate` (one per target)
    GenerateSummary   summary.json    `blocks generate` with several targets
    SheetInfo         sheet.json      `blocks print` (BlockInfo, MarkerInfo inside)
    CalibrationInfo   calib.json      `blocks calibration-sheet` (a SheetInfo with swatches)
    ColorMapRecord    colormap.json   `blocks calibrate` (transforms.colormap.ColorMap holds it as tensors)
    CaptureSummary    --summary       `blocks capture`
    OnePixelSummary   summary.json    `blocks onepixel`
    EvaluateReport    --out / stdout  `blocks evaluate` (EvaluateRow per model with several models)
    SweepRecord       sweep.json      `blocks sweep`
    SimulateInfo      (printed only)  `blocks simulate` writes a video, no JSON: this is what it did
    ScenesInfo        scenes.json     `blocks sample-scenes` / `blocks digits-scenes`

One write/read pair for all of them (Record.write / Record.read): written atomically, NaN or
infinity refused (common.files.json_text), and every record carries a `version`. Keys a reader
does not know (added by hand, or by a later tool writing the same version) are kept in `extra` and
written back, so read -> write round-trips a file unchanged; a file of a newer version is refused.

Read back, a file is checked for meaning as well as shape (issue 30), each rule beside the field it
guards: types strictly (true is not a number, "50" is not a number), RANGES and CHOICES per field,
and the rules between fields in the record's own check (a marker id within the sheet's ArUco
dictionary, a block on its page, a swatch inside its field, a colour map's curves all of one length).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.errors import UserError
from common.formats import (CalibrationLines, CaptureLines, ColorMapLines, EvaluateLines, GenerateSummaryLines,
                             OnePixelLines, PatchLines, ScenesLines, SheetLines, SimulateLines, SweepLines)
from common.goal import Goal

VERSION = 1
# A printed length in mm: under 0.1 mm no printer draws it; 2 m is beyond A0's long side (1189 mm).
PRINTED_MM = (0.1, 2000.0)
PAGE_MM = (10.0, 2000.0)  # a page's side
EDGE_MM = 1e-3  # sheet.json rounds to 0.1 um: a thing this far over its page's edge is on it
# The ArUco dictionaries a sheet may name, and how many marker ids each has (0 .. n-1); the sheets
# this tool prints use printing.markers.DICTIONARY. tests/test_readers.py checks the counts against OpenCV.
ARUCO_IDS = {"DICT_4X4_50": 50, "DICT_4X4_100": 100, "DICT_4X4_250": 250, "DICT_4X4_1000": 1000, "DICT_5X5_50": 50,
             "DICT_5X5_100": 100, "DICT_6X6_50": 50, "DICT_6X6_250": 250, "DICT_ARUCO_ORIGINAL": 1024}
# Where printing.layout may put a marker: beside a block's corner, the middle of a side, or on the
# ring around a cube's net (printing.layout takes its CORNERS from here).
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")  # ArUco's corner order too
MARKER_SPOTS = CORNERS + ("left", "right", "above", "below", "ring_left", "ring_right", "ring_above", "ring_below")


class Entry:
    """A dataclass that is (part of) a JSON file. Subclasses are dataclasses with an `extra` field;
    PARTS names the fields that hold nested entries, as field -> (Entry class, many)."""

    PARTS: ClassVar[dict[str, tuple[type, bool]]] = {}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {}  # numeric field (or each of a list's) -> [lo, hi]
    CHOICES: ClassVar[dict[str, tuple]] = {}  # field -> the values it may take (None aside, where allowed)
    TUPLES: ClassVar[tuple[str, ...]] = ()  # list fields read back as tuples
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()  # fields left out of the file while None (one file, two shapes)

    def to_json(self) -> dict:
        d = {f.name: _plain(getattr(self, f.name)) for f in fields(self)
             if f.name != "extra" and not (f.name in self.OMIT_NONE and getattr(self, f.name) is None)}
        return {**self.extra, **d}

    @classmethod
    def from_json(cls, d: Any):
        """The parsed JSON -> the record; TypeError/ValueError/KeyError on a malformed one (a
        FieldError naming the field when a field has the wrong type or is out of RANGES)."""
        if not isinstance(d, dict):
            raise TypeError(f"expected an object, not {type(d).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: cls._part(k, v) for k, v in d.items() if k in known}
        return cls(**kwargs, extra={k: v for k, v in d.items() if k not in known})

    @classmethod
    def _part(cls, name: str, value):
        _check_field(cls, name, value)
        if name in cls.PARTS and value is not None:
            kind, many = cls.PARTS[name]
            if not many:
                return _within(name, kind.from_json, value)
            if not isinstance(value, (list, tuple)):
                raise FieldError(name, f"must be a list, not {_json_type(value)}")
            return tuple(_within(f"{name}[{i}]", kind.from_json, v) for i, v in enumerate(value))
        if name in cls.TUPLES and value is not None:
            return tuple(value)
        return value


class FieldError(ValueError):
    """A field of a record with the wrong type or out of range: the message names it (blocks[0].x_mm)."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name} {problem}")
        self.field_name, self.problem = field_name, problem


def _within(name: str, parse, value):
    """parse(value) for the part `name` of a record: its errors name the field from the top."""
    try:
        return parse(value)
    except FieldError as e:
        raise FieldError(f"{name}.{e.field_name}", e.problem) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        problem = f"has no {e.args[0]}" if isinstance(e, KeyError) and e.args else f"is malformed ({e})"
        raise FieldError(name, problem) from None


def _json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list",
            tuple: "a list", dict: "an object"}.get(type(v), type(v).__name__)


# what each annotation accepts from JSON (a field whose annotation names an Entry is checked by PARTS)
_ACCEPTS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list, tuple),
            "tuple": (list, tuple), "dict": (dict,), "None": (type(None),)}
_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false", "list": "a list",
          "tuple": "a list", "dict": "an object", "None": "null"}


def _check_field(cls, name: str, value) -> None:
    """value against the field's annotation (int, float | None, tuple[int, int], ...) and RANGES."""
    ann = _annotations(cls).get(name)
    if ann is None:
        return
    kinds = [a.strip().split("[")[0] for a in ann.split("|")]
    if "Any" in kinds or not all(k in _ACCEPTS for k in kinds):  # Any, or an Entry (PARTS checks it)
        return
    ok = any(isinstance(value, _ACCEPTS[k]) and not (isinstance(value, bool) and k in ("int", "float"))
             for k in kinds)
    if not ok:
        want = " or ".join(_WORDS[k] for k in kinds)
        raise FieldError(name, f"must be {want}, not {_json_type(value)}")
    inner = ann.split("[", 1)[1].rsplit("]", 1)[0] if "[" in ann.split("|")[0] else None
    if inner and isinstance(value, (list, tuple)):
        parts = [p.strip() for p in inner.split(",")]
        if parts[-1] != "..." and len(parts) != len(value):
            raise FieldError(name, f"must hold {len(parts)} values, not {len(value)}")
        for i, v in enumerate(value):
            k = parts[0] if parts[-1] == "..." else parts[i]
            if k in ("int", "float") and (isinstance(v, bool) or not isinstance(v, _ACCEPTS[k])):
                raise FieldError(f"{name}[{i}]", f"must be {_WORDS[k]}, not {_json_type(v)}")
    choices = getattr(cls, "CHOICES", {}).get(name)
    if choices is not None and value is not None and value not in choices:
        raise FieldError(name, f"must be one of {', '.join(map(str, choices))}, not {value!r}")
    lo_hi = getattr(cls, "RANGES", {}).get(name)
    if lo_hi is not None and value is not None:
        lo, hi = lo_hi
        for i, v in enumerate(value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not lo <= v <= hi:
                at = f"{name}[{i}]" if isinstance(value, (list, tuple)) else name
                raise FieldError(at, f"must be from {lo:g} to {hi:g}, not {v:g}")


_ANNOTATIONS: dict[type, dict[str, str]] = {}


def _annotations(cls) -> dict[str, str]:
    if cls not in _ANNOTATIONS:
        _ANNOTATIONS[cls] = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "Any")
                             for f in fields(cls)}
    return _ANNOTATIONS[cls]


class Record(Entry):
    """A whole file: Entry plus the one write/read pair."""

    WHAT: ClassVar[str] = "record"  # how errors name the file
    FROM: ClassVar[str] = ""  # the command that writes it

    def to_bytes(self) -> bytes:
        from common.files import json_text

        return (json_text(self.to_json()) + "\n").encode()

    def as_written(self):
        """The record as read back from its JSON (tuples become lists): equal to Record.read of the file."""
        return type(self).from_json(json.loads(self.to_bytes()))

    def write(self, path: str | Path) -> Path:
        from common.files import atomic_write_bytes

        return atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def parse(cls, data, where: str = ""):
        """A record as it is, or parsed JSON made into one; malformed: one UserError line that
        names the field."""
        from common.inputs import check_tree

        if isinstance(data, cls):
            return data
        check_tree(data, where or cls.WHAT)
        _check_version(data, where or cls.WHAT)
        try:
            return cls.from_json(data)
        except FieldError as e:
            raise UserError(f"{where or cls.WHAT}: field {e.field_name} {e.problem} (not a {cls.WHAT} from "
                            f"`{cls.FROM}`?)") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise UserError(f"{where or 'file'} is not a {cls.WHAT} from `{cls.FROM}` (bad or missing field: "
                            f"{type(e).__name__}: {e})") from None

    @classmethod
    def read(cls, path: str | Path):
        """path -> the record. Missing, unreadable, not a regular file, too large, too deep,
        non-finite numbers, huge integers or a field of the wrong type: one UserError line."""
        from common.inputs import read_json_file

        path = Path(path)
        if not path.exists() and not path.is_symlink():
            raise UserError(f"{cls.WHAT} not found: {path}" + (f" (written by `{cls.FROM}`)" if cls.FROM else ""))
        data = read_json_file(path, cls.WHAT)
        return cls.parse(data, str(path))


def _check_version(data, where: str) -> None:
    """A record's version: this tool reads versions 1 to VERSION. A newer file may mean its fields
    differently, so it is refused before they are read (a missing version is an old file: 1)."""
    v = data.get("version") if isinstance(data, dict) else None
    if not isinstance(v, int) or isinstance(v, bool):
        return  # none (an old file), or the wrong type: the field check names it
    if v > VERSION:
        raise UserError(f"{where} version {v} is newer than this tool reads ({VERSION})")
    if v < 1:
        raise UserError(f"{where}: field version must be from 1 to {VERSION}, not {v}")


def _on_page(box, page_mm, names) -> None:
    """box (x, y, width, height) in mm lies on a page of page_mm (width, height); names: the fields
    of x, y, width and height, for the error. A page of (0, 0) is one not recorded (old sheets)."""
    if any(page_mm):
        _inside(box, (0.0, 0.0, *page_mm), names, "page")


def _inside(box, area, names, what: str) -> None:
    """box (x, y, width, height) in mm lies inside area (x, y, width, height), `what` in errors."""
    for axis in (0, 1):
        pos, size, start, side = box[axis], box[axis + 2], area[axis], area[axis + 2]
        if size > side + EDGE_MM:
            raise FieldError(names[axis + 2], f"must be at most its {what}'s {side:g} mm, not {size:g}")
        if not start - EDGE_MM <= pos <= start + side - size + EDGE_MM:
            raise FieldError(names[axis], f"must be from {start:g} to {start + side - size:g} to lie on its {what}, "
                                          f"not {pos:g}")


def _plain(v):
    if isinstance(v, (Entry, Goal)):
        return v.to_json()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


# --- patch.json ---------------------------------------------------------------------------------

@dataclass
class PatchRecord(PatchLines, Record):
    """patch.json, written next to patch.png by `blocks generate` (blocks.commands.generate.run_generate)."""

    WHAT: ClassVar[str] = "patch.json"
    FROM: ClassVar[str] = "blocks generate"
    PARTS: ClassVar = {"target": (Goal, False)}

    target: Goal | None = None
    model: Any = None  # the model's description (blocks.models Classifier.describe())
    weights_sha256: str | None = None
    device: str | None = None
    ranks: int = 1
    eot: str | None = None
    eot_settings: dict | None = None
    scale: list | None = None
    scenes: str | None = None
    eval_scenes: str | None = None
    config: dict | None = None
    seed: int | None = None
    stopped: str | None = None
    best_step: int | None = None
    best_train_prob: float | None = None
    steps_run: int = 0
    seconds: float = 0.0
    colormap: str | None = None
    printability: float = 0.0
    tv: float = 0.0
    curve: dict | None = None
    held_out: dict | None = None
    members: list | None = None
    versions: dict | None = None
    # --distance: {distance_m, size_mm, fov_deg, band_m [near, far], coverage [lo, hi], success}
    reach: dict | None = None
    resumed_from: dict | None = None  # --resume: {folder, patch_sha256, steps_run, held_out_success}
    patch_sha256: str | None = None
    patch_px: list | None = None
    written: str | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def model_name(self) -> str | None:
        m = self.model
        if isinstance(m, dict):
            name = m.get("model", m.get("name"))
            return str(name) if name is not None else None
        return str(m) if isinstance(m, str) else None


@dataclass
class GenerateRow(Entry):
    PARTS: ClassVar = {"target": (Goal, False)}

    target: Goal
    held_out_success: float | None
    mean_target_prob: float | None
    best_step: int | None
    steps_run: int
    seconds: float
    stopped: str | None
    folder: str
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class GenerateSummary(GenerateSummaryLines, Record):
    """summary.json of a many-target `blocks generate`: one row per target folder."""

    WHAT: ClassVar[str] = "generate summary"
    FROM: ClassVar[str] = "blocks generate"
    PARTS: ClassVar = {"targets": (GenerateRow, True)}

    model: Any = None
    weights_sha256: str | None = None
    ranks: int = 1
    targets: tuple = ()
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)


# --- sheet.json and calib.json ------------------------------------------------------------------

@dataclass(frozen=True)
class MarkerInfo(Entry):
    """One printed ArUco marker: x/y/size of its black square, in mm from the page's top-left."""

    RANGES: ClassVar = {"id": (0, max(ARUCO_IDS.values()) - 1), "x_mm": (0, PAGE_MM[1]), "y_mm": (0, PAGE_MM[1]),
                        "size_mm": PRINTED_MM}
    CHOICES: ClassVar = {"spot": MARKER_SPOTS}

    id: int
    x_mm: float
    y_mm: float
    size_mm: float
    spot: str | None = None
    extra: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def corners_mm(self) -> np.ndarray:
        """(4, 2) in ArUco's corner order: top-left, top-right, bottom-right, bottom-left."""
        x, y, s = self.x_mm, self.y_mm, self.size_mm
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)

    @classmethod
    def from_json(cls, d):
        m = super().from_json(d)
        return cls(int(m.id), float(m.x_mm), float(m.y_mm), float(m.size_mm), m.spot, m.extra)

    def check_on(self, page_mm: tuple[float, float], dictionary: str) -> None:
        """Meaning on its sheet: an id the sheet's ArUco dictionary has, the square on the page."""
        n = ARUCO_IDS[dictionary]
        if self.id >= n:
            raise FieldError("id", f"must be from 0 to {n - 1} ({dictionary} has {n} markers), not {self.id}")
        _on_page((self.x_mm, self.y_mm, self.size_mm, self.size_mm), page_mm, ("x_mm", "y_mm", "size_mm", "size_mm"))


@dataclass(frozen=True)
class BlockInfo(Entry):
    """One printed block (see printing.sheet for the meaning of each field)."""

    PARTS: ClassVar = {"markers": (MarkerInfo, True), "target": (Goal, False)}
    TUPLES: ClassVar = ("tile", "image_px", "distance_m")
    RANGES: ClassVar = {"page": (0, 10_000), "x_mm": (0, PAGE_MM[1]), "y_mm": (0, PAGE_MM[1]), "size_mm": PRINTED_MM,
                        "width_mm": PRINTED_MM, "height_mm": PRINTED_MM, "patch_size_mm": PRINTED_MM,
                        "tile": (1, 1000), "image_px": (1, 100_000),
                        "distance_m": (0, 1e6), "fov_deg": (0, 180)}

    page: int
    x_mm: float
    y_mm: float
    size_mm: float
    width_mm: float
    height_mm: float
    patch_size_mm: float
    tile: tuple[int, int]
    markers: tuple[MarkerInfo, ...]
    patch_sha256: str | None = None
    patch_file: str | None = None
    target: Goal | None = None
    model: str | None = None
    face: str | None = None
    image_px: tuple[int, int] | None = None
    distance_m: tuple[float, float] | None = None  # whole-frame patches: (near, far) camera distance
    fov_deg: float | None = None  # the camera the distances are for
    extra: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def corners_mm(self) -> np.ndarray:
        """(4, 2) corners of the patch area: top-left, top-right, bottom-right, bottom-left."""
        x, y, w, h = self.x_mm, self.y_mm, self.width_mm, self.height_mm
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict):
            raise TypeError(f"a block must be an object, not {type(d).__name__}")
        name = "size_mm" if "size_mm" in d else "width_mm"
        _check_field(cls, name, d[name])  # before float(): "50" and true are not sizes
        size = float(d[name])
        # sheets from before width/height/tile were recorded: a square single-patch block
        filled = {"page": 0, "width_mm": size, "height_mm": size, "patch_size_mm": size, "tile": (1, 1),
                  "markers": [], **_nested_target(d), "size_mm": size}
        b = super().from_json(filled)
        return cls(int(b.page), float(b.x_mm), float(b.y_mm), size, float(b.width_mm), float(b.height_mm),
                   float(b.patch_size_mm), b.tile, b.markers, b.patch_sha256, b.patch_file, b.target,
                   b.model, b.face, b.image_px or None,
                   distance_m=tuple(float(v) for v in b.distance_m) if b.distance_m else None,
                   fov_deg=float(b.fov_deg) if b.fov_deg is not None else None, extra=b.extra)

    def check_on(self, page_mm: tuple[float, float], pages: int, dictionary: str) -> None:
        """Meaning on its sheet: one of its pages, on that page, and so are its markers."""
        if self.page >= pages:
            raise FieldError("page", f"must be from 0 to {pages - 1} (the sheet has {pages} page(s)), not {self.page}")
        _on_page((self.x_mm, self.y_mm, self.width_mm, self.height_mm), page_mm,
                 ("x_mm", "y_mm", "width_mm", "height_mm"))
        for i, m in enumerate(self.markers):
            _within(f"markers[{i}]", lambda m: m.check_on(page_mm, dictionary), m)


def _nested_target(d: dict) -> dict:
    """d with an older file's flat target, target_index and target_mode made one Goal object."""
    if isinstance(d.get("target"), dict) or not {"target", "target_index", "target_mode"} & set(d):
        return d
    goal = _within("target", lambda _: Goal.from_flat(d.get("target"), d.get("target_index"),
                                                      d.get("target_mode")), None)
    rest = {k: v for k, v in d.items() if k not in ("target_index", "target_mode")}
    return {**rest, "target": goal.to_json() if goal else None}


@dataclass(frozen=True)
class SheetInfo(SheetLines, Record):
    """sheet.json, written next to the PDF by `blocks print` (printing.sheet documents the fields)."""

    WHAT: ClassVar[str] = "sheet"
    FROM: ClassVar[str] = "blocks print"
    PARTS: ClassVar = {"blocks": (BlockInfo, True)}
    TUPLES: ClassVar = ("page_size_mm",)
    RANGES: ClassVar = {"page_size_mm": (0, PAGE_MM[1]), "pages": (1, 10_000), "dpi": (1, 100_000),
                        "swatch_mm": PRINTED_MM, "grid_levels": (1, 1000), "rows": (1, 10_000), "cols": (1, 10_000)}
    CHOICES: ClassVar = {"aruco_dictionary": tuple(ARUCO_IDS)}

    page_size_mm: tuple[float, float]
    pages: int
    layout: str
    aruco_dictionary: str
    blocks: tuple[BlockInfo, ...]
    dpi: int | None = None
    date: str | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict):
            raise TypeError(f"expected an object, not {type(d).__name__}")
        d = {"page_size_mm": (0.0, 0.0), "pages": 1, "layout": "grid", "aruco_dictionary": "DICT_4X4_50",
             "version": VERSION, **d}
        s = super().from_json(d)
        s = replace(s, page_size_mm=tuple(float(v) for v in s.page_size_mm), pages=int(s.pages),
                    layout=str(s.layout), aruco_dictionary=str(s.aruco_dictionary), version=int(s.version))
        s.check()
        return s

    def check(self) -> None:
        """Rules between fields: a page of a printable size (or 0 x 0: not recorded, an old sheet),
        every block on one of the pages, every marker on the page and in the dictionary."""
        if any(self.page_size_mm) and min(self.page_size_mm) < PAGE_MM[0]:
            w, h = self.page_size_mm
            raise FieldError("page_size_mm", f"must be {PAGE_MM[0]:g} to {PAGE_MM[1]:g} mm a side, not {w:g} x {h:g}")
        for i, b in enumerate(self.blocks):
            _within(f"blocks[{i}]", lambda b: b.check_on(self.page_size_mm, self.pages, self.aruco_dictionary), b)

    @classmethod
    def read(cls, path: str | Path):
        """sheet.json, or the PDF's path (its sidecar is read)."""
        return super().read(sheet_json(path))

    @cached_property
    def marker_index(self) -> dict[int, int]:
        """marker id -> index of its block (capture looks every detected marker up here)."""
        return {m.id: i for i, b in enumerate(self.blocks) for m in b.markers}

    def block_of_marker(self, marker_id: int) -> int | None:
        return self.marker_index.get(int(marker_id))


@dataclass(frozen=True)
class SwatchInfo(Entry):
    """One colour swatch of calib.json: its colour as sent to the printer (0-255) and its box, in
    mm from the page's top-left (height_mm: calib.json from before it was recorded are square)."""

    TUPLES: ClassVar = ("rgb",)
    RANGES: ClassVar = {"index": (0, 1_000_000), "rgb": (0, 255), "x_mm": (0, PAGE_MM[1]), "y_mm": (0, PAGE_MM[1]),
                        "size_mm": PRINTED_MM, "height_mm": PRINTED_MM}

    index: int
    rgb: tuple[int, int, int]
    x_mm: float
    y_mm: float
    size_mm: float
    height_mm: float | None = None
    extra: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def box_mm(self) -> tuple[float, float, float, float]:
        """x, y, width, height in mm."""
        return self.x_mm, self.y_mm, self.size_mm, self.size_mm if self.height_mm is None else self.height_mm


@dataclass(frozen=True)
class CalibrationInfo(CalibrationLines, SheetInfo):
    """calib.json: a valid sheet.json (one block, the swatch field) plus the swatches as sent."""

    WHAT: ClassVar[str] = "calibration sheet"
    FROM: ClassVar[str] = "blocks calibration-sheet"
    PARTS: ClassVar = {"blocks": (BlockInfo, True), "markers": (MarkerInfo, True), "swatches": (SwatchInfo, True)}

    kind: str = "calibration"
    markers: tuple[MarkerInfo, ...] = ()
    swatch_mm: float | None = None
    grid_levels: int | None = None
    rows: int | None = None
    cols: int | None = None
    swatches: tuple[SwatchInfo, ...] = ()

    def check(self) -> None:
        """A sheet's rules, and the swatches inside the swatch field (the one block): a swatch
        outside it would be sampled from whatever lies there, or from nothing."""
        super().check()
        for i, m in enumerate(self.markers):
            _within(f"markers[{i}]", lambda m: m.check_on(self.page_size_mm, self.aruco_dictionary), m)
        if len(self.blocks) != 1:
            return  # capture.calibrate says a calibration sheet has one field
        b = self.blocks[0]
        for i, s in enumerate(self.swatches):
            _within(f"swatches[{i}]", lambda s: _inside(s.box_mm, (b.x_mm, b.y_mm, b.width_mm, b.height_mm),
                                                        ("x_mm", "y_mm", "size_mm", "height_mm"), "swatch field"), s)


def sidecar_path(pdf_path: str | Path) -> Path:
    """sheet.pdf -> sheet.json (calib.pdf -> calib.json): where a sheet's record lies."""
    return Path(pdf_path).with_suffix(".json")


def sheet_json(path: str | Path) -> Path:
    """A sheet's record path, given it or its PDF."""
    path = Path(path)
    return sidecar_path(path) if path.suffix.lower() == ".pdf" else path


# --- colormap.json ------------------------------------------------------------------------------

@dataclass
class ColorMapRecord(ColorMapLines, Record):
    """colormap.json from `blocks calibrate`; transforms.colormap.ColorMap is its tensor form."""

    WHAT: ClassVar[str] = "colour map"
    FROM: ClassVar[str] = "blocks calibrate"
    MAX_KNOTS: ClassVar[int] = 256  # a curve's knots: a fit uses 9; 256 is one per 8-bit level
    LIMIT: ClassVar[float] = 1e3  # coef and offset: a fit maps [0, 1] to about [0, 1]
    MAX_GAMUT: ClassVar[int] = 10_000  # colours: an A3 sheet of 3 mm swatches holds about 5,500
    CHOICES: ClassVar = {"model": ("additive-piecewise-linear",)}  # transforms.colormap applies this one
    RANGES: ClassVar = {"mean_error_rgb": (0, 255)}

    coef: list  # [3][3][knots]: seen channel, sent channel, knot
    offset: list  # [3]
    model: str = "additive-piecewise-linear"
    knots: int | None = None
    mean_error_rgb: float | None = None
    gamut_rgb: list | None = None  # [N][3] colours the camera saw, 0-255
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d):
        rec = super().from_json(d)
        rec.check()
        return rec

    def check(self) -> None:
        """A map that can be applied: 3 x 3 curves of one knot count (2 to MAX_KNOTS), 3 offsets,
        finite and within LIMIT, knots (if given) that count them, and a gamut of 1 to MAX_GAMUT
        colours 0-255 (null: none measured; generation then uses a default palette)."""
        k = None
        _list_of(self.coef, "coef", 3, "3 rows (one per seen channel)")
        for j, row in enumerate(self.coef):
            _list_of(row, f"coef[{j}]", 3, "3 tone curves (one per sent channel)")
            for c, curve in enumerate(row):
                at = f"coef[{j}][{c}]"
                n = len(curve) if isinstance(curve, list) else None
                if n is None or not 2 <= n <= self.MAX_KNOTS:
                    raise FieldError(at, f"must be a tone curve of 2 to {self.MAX_KNOTS} knots, not {_count(curve)}")
                if k is not None and n != k:
                    raise FieldError(at, f"has {n} knots but coef[0][0] has {k}: every curve has the same knots")
                k = n
                _numbers(curve, at, -self.LIMIT, self.LIMIT)
        _list_of(self.offset, "offset", 3, "3 numbers")
        _numbers(self.offset, "offset", -self.LIMIT, self.LIMIT)
        if self.knots is not None and self.knots != k:
            raise FieldError("knots", f"must count coef's knots ({k}), not {self.knots}")
        if self.gamut_rgb is not None:
            if not 1 <= len(self.gamut_rgb) <= self.MAX_GAMUT:
                raise FieldError("gamut_rgb", f"must hold 1 to {self.MAX_GAMUT} colours (null: none measured), "
                                              f"not {len(self.gamut_rgb)}")
            for i, colour in enumerate(self.gamut_rgb):
                _list_of(colour, f"gamut_rgb[{i}]", 3, "3 numbers [r, g, b]")
                _numbers(colour, f"gamut_rgb[{i}]", 0, 255)


def _count(v) -> str:
    return f"{len(v)}" if isinstance(v, list) else _json_type(v)


def _list_of(v, at: str, n: int, what: str) -> None:
    if not isinstance(v, list) or len(v) != n:
        raise FieldError(at, f"must be a list of {what}, not {'a list of ' + str(len(v)) if isinstance(v, list) else _json_type(v)}")


def _numbers(values: list, at: str, lo: float, hi: float) -> None:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FieldError(f"{at}[{i}]", f"must be a number, not {_json_type(v)}")
        if not lo <= v <= hi:
            raise FieldError(f"{at}[{i}]", f"must be from {lo:g} to {hi:g}, not {v:g}")


# --- capture and one-pixel summaries ------------------------------------------------------------

@dataclass
class CaptureSummary(CaptureLines, Record):
    """The summary `blocks capture` prints and writes (--summary). Keys only some runs have
    (block sizes with a sheet, a stream's reconnects, unreadable files) are in extra."""

    WHAT: ClassVar[str] = "capture summary"
    FROM: ClassVar[str] = "blocks capture"
    PARTS: ClassVar = {"target": (Goal, False)}

    frames: int = 0
    frame_hit_rate: float = 0.0  # the headline: frames whose whole frame the model read as the target
    frame_mean_target_prob: float = 0.0
    hit_rate: float = 0.0  # frames that any view (whole frame, a block, a window) won
    mean_target_prob: float = 0.0  # of the best view of each frame
    median_target_prob: float = 0.0
    longest_hit_run: int = 0
    found_rate: float | None = None
    fps: float = 0.0
    block_hit_rate: float | None = None  # diagnosis (--sheet): of the frames with a block found
    duration_s: float = 0.0
    target: Goal | None = None
    model: str | None = None
    stopped_by: str | None = None
    sheet: str | None = None
    source: str | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, key):  # summary["frames"] reads as the dict it replaced
        return self.to_json()[key]

    @classmethod
    def from_json(cls, d):
        return super().from_json(_nested_target(d) if isinstance(d, dict) else d)


@dataclass
class OnePixelRow(Entry):
    """One image of a one-pixel run, as its table row: before/after are {class, index, prob, ...}
    (the full record, pixels included, is <name>.json)."""

    name: str
    image: str
    success: bool
    queries: int
    before: dict
    after: dict
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class OnePixelSummary(OnePixelLines, Record):
    """summary.json of `blocks onepixel` (each image's own record is <name>.json next to it)."""

    WHAT: ClassVar[str] = "one-pixel summary"
    FROM: ClassVar[str] = "blocks onepixel"
    PARTS: ClassVar = {"results": (OnePixelRow, True), "target": (Goal, False)}
    OMIT_NONE: ClassVar = ("popsize", "maxiter")  # DE runs only

    images: int = 0
    successes: int = 0
    success_rate: float = 0.0
    mean_confidence: float | None = None
    mean_queries: float = 0.0
    max_queries: int = 0
    fitness: str | None = None
    seconds: float = 0.0
    targeted: bool = False
    strategy: str | None = None
    pixels: int = 1
    popsize: int | None = None
    maxiter: int | None = None
    model: Any = None
    device: str | None = None
    seed: int | None = None
    target: Goal | None = None
    input_size: int | None = None
    files: list = field(default_factory=list)
    results: tuple[OnePixelRow, ...] = ()  # one row per image, in input order
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, key):
        return self.to_json()[key]


# --- evaluate, sweep, simulate ------------------------------------------------------------------

@dataclass
class EvaluateRow(Entry):
    """One model of a several-model `blocks evaluate` (a transfer row), all on the same views."""

    model: str
    weights: str | None = None
    success_rate: float = 0.0
    mean_target_prob: float = 0.0
    top5_rate: float = 0.0
    n: int = 0
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class EvaluateReport(EvaluateLines, Record):
    """`blocks evaluate`'s JSON (--out, else stdout). One model: model, success_rate,
    mean_target_prob, top5_rate, by_scale, by_rotation; several: a `models` row each instead."""

    WHAT: ClassVar[str] = "evaluation"
    FROM: ClassVar[str] = "blocks evaluate"
    PARTS: ClassVar = {"target": (Goal, False), "models": (EvaluateRow, True)}
    OMIT_NONE: ClassVar = ("model", "success_rate", "mean_target_prob", "by_scale", "by_rotation", "top5_rate",
                           "models", "by_coverage", "by_reduction", "by_tilt", "works_from")

    patch: str = ""
    target: Goal | None = None
    model: str | None = None
    eot: str | None = None
    scale: list | None = None
    seed: int | None = None
    success_rate: float | None = None
    mean_target_prob: float | None = None
    n: int = 0
    by_scale: dict | None = None
    by_rotation: dict | None = None
    top5_rate: float | None = None
    models: tuple[EvaluateRow, ...] | None = None
    # whole-frame views (--eot held): success by coverage, reduction and tilt (blocks.evaluate)
    by_coverage: dict | None = None
    by_reduction: dict | None = None
    by_tilt: dict | None = None
    works_from: float | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class SweepRecord(SweepLines, Record):
    """sweep.json of `blocks sweep`: class probabilities against epsilon (0-255 units); probs maps
    each class shown to one probability per epsilon."""

    WHAT: ClassVar[str] = "sweep"
    FROM: ClassVar[str] = "blocks sweep"
    PARTS: ClassVar = {"target": (Goal, False)}

    image: str = ""
    target: Goal | None = None
    model: str | None = None
    epsilons_255: list = field(default_factory=list)
    best_epsilon_255: float = 0.0
    best_target_prob: float = 0.0
    clean_top1: str | None = None
    probs: dict = field(default_factory=dict)
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class SimulateInfo(SimulateLines, Record):
    """What `blocks simulate` did (capture.simulate.simulate returns it; the command prints it and
    writes only the video). sheet/block: the sheet.json used and the block filmed, None without one."""

    WHAT: ClassVar[str] = "simulation info"
    FROM: ClassVar[str] = "blocks simulate"

    out: str = ""
    frames: int = 0
    fps: float = 0.0
    size: list = field(default_factory=list)  # [w, h] pixels
    seed: int = 0
    sheet: str | None = None
    block: int | None = None
    page: int = 0
    render_dpi: float = 0.0
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ScenesInfo(ScenesLines, Record):
    """scenes.json of `blocks sample-scenes` / `blocks digits-scenes`: what went into train/ and
    test/ (split by photo or by digit image, never both sides). excluded: the class left out."""

    WHAT: ClassVar[str] = "scenes info"
    FROM: ClassVar[str] = "blocks sample-scenes"

    source: str = "photos"  # photos (shipped with installed packages) or digits (held-out digits)
    train: int = 0
    test: int = 0
    excluded: str | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict, repr=False, compare=False)
