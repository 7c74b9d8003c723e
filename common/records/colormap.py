"""colormap.json from `blocks calibrate`; transforms.colormap.ColorMap is its tensor form."""
from __future__ import annotations

from typing import ClassVar


from common.records.base import VERSION, FieldError, Record, between, json_type, one_of
from common.formats import ColorMapLines  # how each record reads on screen


class ColorMapRecord(ColorMapLines, Record):
    """colormap.json: coef [3][3][knots] (seen channel, sent channel, knot), offset [3], the gamut seen."""

    WHAT: ClassVar[str] = "colour map"
    FROM: ClassVar[str] = "blocks calibrate"
    MAX_KNOTS: ClassVar[int] = 256  # a curve's knots: a fit uses 9; 256 is one per 8-bit level
    LIMIT: ClassVar[float] = 1e3  # coef and offset: a fit maps [0, 1] to about [0, 1]
    MAX_GAMUT: ClassVar[int] = 10_000  # colours: an A3 sheet of 3 mm swatches holds about 5,500

    # the shapes are checked by `check`, which names the curve at fault (coef[2][1] has 8 knots ...)
    coef: list  # [3][3][knots]: seen channel, sent channel, knot
    offset: list  # [3]
    model: one_of("additive-piecewise-linear") = "additive-piecewise-linear"  # the one transforms.colormap applies
    knots: int | None = None
    mean_error_rgb: between(float, 0, 255) | None = None
    gamut_rgb: list | None = None  # [N][3] colours the camera saw, 0-255
    version: int = VERSION

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
    return f"{len(v)}" if isinstance(v, list) else json_type(v)


def _list_of(v, at: str, n: int, what: str) -> None:
    if not isinstance(v, list) or len(v) != n:
        raise FieldError(at, f"must be a list of {what}, not {'a list of ' + str(len(v)) if isinstance(v, list) else json_type(v)}")


def _numbers(values: list, at: str, lo: float, hi: float) -> None:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FieldError(f"{at}[{i}]", f"must be a number, not {json_type(v)}")
        if not lo <= v <= hi:
            raise FieldError(f"{at}[{i}]", f"must be from {lo:g} to {hi:g}, not {v:g}")
