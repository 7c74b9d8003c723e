"""The schema library under every record: pydantic v2 models, and the one converter from a
pydantic ValidationError to the tool's one-line UserError that names the file and the field.

Two modes, on purpose: a record the tool builds in Python is validated leniently (a tuple or a list,
a numpy float: the tool's own values), a file read back is validated strictly, as JSON (true is
not a number, "50" is not a number, 1.5 is not a count). Rules between fields (a marker id within
its sheet's dictionary, a block on its page) live in each record's `check` and raise FieldError,
which names the field relative to the part that raised it; the converter prefixes the part's path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, PlainValidator, ValidationError
from pydantic import WithJsonSchema, model_validator

from common.errors import UserError
from common.goal import MODES, Goal

VERSION = 1
EDGE_MM = 1e-3  # sheet.json rounds to 0.1 um: a thing this far over its page's edge is on it


class FieldError(ValueError):
    """A rule between fields broken: field_name is relative to the part that raised it (x_mm,
    markers[1].id); the converter puts the part's own path in front."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name} {problem}")
        self.field_name, self.problem = field_name, problem


# --- field types: a number within a range, one of some words, a Goal --------------------------------

def between(kind: type, lo: float, hi: float):
    """kind (int or float) from lo to hi; the error says both ends, as the readers always have."""
    def check(v):
        if not lo <= v <= hi:
            raise ValueError(f"must be from {lo:g} to {hi:g}, not {v:g}")
        return v

    schema = {"type": "integer" if kind is int else "number", "minimum": lo, "maximum": hi}
    return Annotated[kind, AfterValidator(check), WithJsonSchema(schema)]


def _as_tuple(v):
    return tuple(v) if isinstance(v, list) else v


def listed(kind):
    """A tuple field that reads a JSON list: strict mode takes only a tuple from Python."""
    return Annotated[kind, BeforeValidator(_as_tuple)]


def one_of(*choices: str):
    def check(v):
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {v!r}")
        return v

    return Annotated[str, AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(choices)})]


def _goal(v) -> Goal:
    if isinstance(v, Goal):
        return v
    try:  # the JSON form, or an older shape (a bare name or index, {index, class}): common.goal
        return Goal.from_json(v)
    except (TypeError, ValueError) as e:
        raise ValueError(f"is malformed ({e})") from None


_GOAL_SCHEMA = {"anyOf": [
    {"type": "object", "properties": {"index": {"type": ["integer", "null"], "minimum": 0},
                                      "name": {"type": ["string", "null"]}, "mode": {"enum": [*MODES, None]},
                                      "alternatives": {"type": "array", "items": {"type": "string"}}}},
    {"type": "string", "description": "older files: the class name"},
    {"type": "integer", "minimum": 0, "description": "older files: the class index"}]}
GoalField = Annotated[Goal, PlainValidator(_goal), PlainSerializer(Goal.to_json), WithJsonSchema(_GOAL_SCHEMA)]


# --- the models -----------------------------------------------------------------------------------

class _Positional(type(BaseModel)):  # pydantic's model metaclass, by its public face
    """Part(0, 1.0, ...) and Part(..., extra={...}) as the dataclasses took them. Done here, not in
    __init__: a model with its own __init__ is validated through it, which would drop strict mode."""

    def __call__(cls, *args, **kwargs):
        extra = kwargs.pop("extra", None) or {}
        kwargs.update(zip(cls.model_fields, args))
        return super().__call__(**{**extra, **kwargs})


class Part(BaseModel, metaclass=_Positional):
    """A part of a JSON file. Keys it does not know are kept (`extra`) and written back, so
    read -> write round-trips a file; fields may be given by position, as the dataclasses were."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, arbitrary_types_allowed=True)
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()  # fields left out of the file while None (one file, two shapes)

    @property
    def extra(self) -> dict:
        return self.__pydantic_extra__

    def replaced(self, **changes):
        """A copy with changes, validated again (dataclasses.replace, for a model)."""
        return type(self)(**{**dict(self), **changes})

    @model_validator(mode="after")
    def _rules(self):
        self.check()
        return self

    def check(self) -> None:
        """Rules between fields (a block on its page, a colour map's curves of one shape): raise
        FieldError naming the field. None by default; a part with such rules overrides it."""

    def to_json(self) -> dict:
        skip = {k for k in self.OMIT_NONE if getattr(self, k) is None}
        return _plain(self.model_dump(exclude=skip))

    @classmethod
    def from_json(cls, d: Any):
        """Parsed JSON -> the part, strictly; pydantic.ValidationError (a ValueError) if malformed."""
        return cls.model_validate(d, strict=True)


class Record(Part):
    """A whole file: the one write/read pair, and a version."""

    WHAT: ClassVar[str] = "record"  # how errors name the file
    FROM: ClassVar[str] = ""  # the command that writes it

    def to_bytes(self) -> bytes:
        from common.files import json_text

        return (json_text(self.to_json()) + "\n").encode()

    def as_written(self):
        """The record as read back from its JSON: equal to Record.read of the file."""
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
        where = where or cls.WHAT
        check_tree(data, where)
        _check_version(data, where)
        try:
            return cls.from_json(data)
        except ValidationError as e:
            raise user_error(e, where, cls) from None

    @classmethod
    def read(cls, path: str | Path):
        """path -> the record. Missing, unreadable, not a regular file, too large, too deep,
        non-finite numbers, huge integers or a field of the wrong type: one UserError line."""
        from common.inputs import read_json_file

        path = Path(path)
        if not path.exists() and not path.is_symlink():
            raise UserError(f"{cls.WHAT} not found: {path}" + (f" (written by `{cls.FROM}`)" if cls.FROM else ""))
        return cls.parse(read_json_file(path, cls.WHAT), str(path))


def json_schema(cls) -> dict:
    """The JSON Schema (2020-12) of a record's file, as docs/schema/ publishes it: what a file must
    hold to be read (the rules between fields, like a block on its page, are the reader's alone)."""
    schema = cls.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$comment": f"written by `{cls.FROM}`; "
            "scripts/write_schemas.py writes this file", **schema}


# --- ValidationError -> one line --------------------------------------------------------------------

_WANT = {"int_type": "a whole number", "float_type": "a number", "string_type": "text", "bool_type": "true or false",
         "list_type": "a list", "tuple_type": "a list", "dict_type": "an object", "model_type": "an object",
         "model_attributes_type": "an object", "dataclass_type": "an object"}


def user_error(e: ValidationError, where: str, cls) -> UserError:
    """The first problem pydantic found, as the tool's one line: `<file>: field blocks[0].size_mm
    must be a number, not text (not a sheet from `blocks print`?)`."""
    err = e.errors()[0]
    loc, kind, value = list(err["loc"]), err["type"], err.get("input")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):  # a rule between fields: its name is relative to loc
        loc, problem = loc + [cause.field_name], cause.problem
    elif kind == "value_error":
        problem = str(cause) if cause is not None else err["msg"]
    elif kind in _WANT:
        problem = f"must be {_WANT[kind]}, not {json_type(value)}"
    elif kind in ("too_long", "too_short"):
        ctx = err.get("ctx") or {}
        n = ctx.get("max_length", ctx.get("min_length"))
        problem = f"must hold {n} values, not {ctx.get('actual_length', json_type(value))}"
    elif kind == "missing":  # named as a field of its part (blocks[0] has no width_mm), or of the file
        loc, problem = (loc[:-1], f"has no {loc[-1]}") if len(loc) > 1 else (loc, "is missing")
    else:
        problem = f"is malformed ({err['msg']})"
    if not loc:
        return UserError(f"{where} is not a {cls.WHAT} from `{cls.FROM}` (bad or missing field: {problem})")
    return UserError(f"{where}: field {field_path(loc)} {problem} (not a {cls.WHAT} from `{cls.FROM}`?)")


def field_path(loc) -> str:
    """('blocks', 0, 'markers', 1, 'id') -> blocks[0].markers[1].id"""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out and not str(p).startswith("[") else str(p))
    return out


def json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list",
            tuple: "a list", dict: "an object"}.get(type(v), type(v).__name__)


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


# --- helpers for the records' rules ----------------------------------------------------------------

def within(name: str, check, value) -> None:
    """check(value) for the part `name` of a record: a FieldError it raises names the field from here."""
    try:
        check(value)
    except FieldError as e:
        raise FieldError(f"{name}.{e.field_name}", e.problem) from None


def on_page(box, page_mm, names) -> None:
    """box (x, y, width, height) in mm lies on a page of page_mm (width, height); names: the fields
    of x, y, width and height, for the error. A page of (0, 0) is one not recorded (old sheets)."""
    if any(page_mm):
        inside(box, (0.0, 0.0, *page_mm), names, "page")


def inside(box, area, names, what: str) -> None:
    """box (x, y, width, height) in mm lies inside area (x, y, width, height), `what` in errors."""
    for axis in (0, 1):
        pos, size, start, side = box[axis], box[axis + 2], area[axis], area[axis + 2]
        if size > side + EDGE_MM:
            raise FieldError(names[axis + 2], f"must be at most its {what}'s {side:g} mm, not {size:g}")
        if not start - EDGE_MM <= pos <= start + side - size + EDGE_MM:
            raise FieldError(names[axis], f"must be from {start:g} to {start + side - size:g} to lie on its {what}, "
                                          f"not {pos:g}")


def nested_target(d):
    """d with an older file's flat target, target_index and target_mode made one Goal object."""
    if not isinstance(d, dict) or isinstance(d.get("target"), (dict, Goal)):
        return d
    if not {"target", "target_index", "target_mode"} & set(d):
        return d
    try:
        goal = Goal.from_flat(d.get("target"), d.get("target_index"), d.get("target_mode"))
    except (TypeError, ValueError) as e:
        raise FieldError("target", f"is malformed ({e})") from None
    rest = {k: v for k, v in d.items() if k not in ("target_index", "target_mode")}
    return {**rest, "target": goal.to_json() if goal else None}


def _plain(v):
    """A dump made JSON's shapes: tuples become lists (as they read back)."""
    if isinstance(v, Goal):
        return v.to_json()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
