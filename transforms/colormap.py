"""Printer-to-camera colour maps: the colour sent to the printer -> the colour a camera sees.

The model is additive and piecewise linear: each seen channel is a sum, over the three sent
channels, of a tone curve with knots on [0, 1], plus an offset:

    seen_j = offset_j + sum_c sum_k coef[j, c, k] * hat_k(sent_c)

It contains "a 3x3 matrix after per-channel tone curves" (coef[j, c, k] = M[j, c] * curve_c(knot_k))
and, being linear in its parameters, fits in closed form by least squares. Differentiable, so
generation can train through it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from common.errors import UserError

KNOTS = 9


def hat_basis(x: torch.Tensor, knots: int = KNOTS) -> torch.Tensor:
    """x: (...,) in [0, 1] -> (..., knots): linear interpolation weights on evenly spaced knots.
    Outside [0, 1] the end segments extend linearly."""
    pos = x * (knots - 1)
    left = pos.floor().clamp(0, knots - 2)
    frac = pos - left
    idx = left.long()
    out = torch.zeros(*x.shape, knots, dtype=x.dtype, device=x.device)
    out.scatter_(-1, idx[..., None], (1 - frac)[..., None])
    out.scatter_add_(-1, (idx + 1)[..., None], frac[..., None])
    return out


@dataclass
class ColorMap:
    coef: torch.Tensor  # (3, 3, knots): seen channel, sent channel, knot
    offset: torch.Tensor  # (3,)
    mean_error_rgb: float | None = None  # of the fit, in 0-255 units
    gamut: torch.Tensor | None = None  # (N, 3) colours the camera saw on the sheet, in [0, 1]
    extra: dict = field(default_factory=dict)

    @property
    def knots(self) -> int:
        return self.coef.shape[-1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) sent colours in [0, 1] -> seen colours (B, 3, H, W)."""
        basis = hat_basis(x, self.knots)  # (B, 3, H, W, K)
        coef = self.coef.to(x.device, x.dtype)
        seen = torch.einsum("bchwk,jck->bjhw", basis, coef)
        # a camera sees colours in [0, 1]: a fit may overshoot a little (black to -0.0011 blue),
        # which the gamma after it would turn into NaN (clip01 keeps the gradient on the bounds)
        from transforms.photometric import clip01

        return clip01(seen + self.offset.to(x.device, x.dtype).view(1, 3, 1, 1))

    def apply_rgb(self, colors: torch.Tensor) -> torch.Tensor:
        """colors: (N, 3) in [0, 1] -> (N, 3)."""
        return self(colors.T[None, :, :, None])[0, :, :, 0].T

    @staticmethod
    def identity(knots: int = KNOTS) -> "ColorMap":
        grid = torch.linspace(0, 1, knots)
        coef = torch.zeros(3, 3, knots)
        for c in range(3):
            coef[c, c] = grid
        return ColorMap(coef, torch.zeros(3))

    def to_record(self):
        """The colormap.json record (common.records.ColorMapRecord); extra keeps the fit's notes."""
        from common.records import ColorMapRecord

        return ColorMapRecord(coef=self.coef.tolist(), offset=self.offset.tolist(), knots=self.knots,
                              mean_error_rgb=self.mean_error_rgb,
                              gamut_rgb=None if self.gamut is None else (self.gamut * 255).round().int().tolist(),
                              extra=dict(self.extra))

    @staticmethod
    def load(path: str | Path) -> "ColorMap":
        """colormap.json -> the map. common.records.ColorMapRecord checks it can be applied (the
        curves' shape and knots, finite coefficients, a gamut of 0-255 colours): one line if not."""
        from common.records import ColorMapRecord

        rec = ColorMapRecord.read(Path(path))
        gamut = None if rec.gamut_rgb is None else torch.tensor(rec.gamut_rgb, dtype=torch.float32) / 255
        return ColorMap(torch.tensor(rec.coef, dtype=torch.float32), torch.tensor(rec.offset, dtype=torch.float32),
                        rec.mean_error_rgb, gamut, rec.extra)


def fit_colormap(sent: torch.Tensor, seen: torch.Tensor, knots: int = KNOTS,
                 ridge: float = 1e-4) -> ColorMap:
    """Least-squares fit. sent, seen: (N, 3) in [0, 1] (swatch colours and what the camera saw).

    The small ridge keeps knots that no swatch constrains near a smooth solution.
    """
    sent, seen = sent.double(), seen.double()
    if len(sent) < 3 * knots:
        raise UserError(f"too few colour samples to fit a map: {len(sent)} (need {3 * knots})")
    X = hat_basis(sent, knots).reshape(len(sent), 3 * knots)  # (N, 3K)
    X = torch.cat([X, torch.ones(len(sent), 1, dtype=X.dtype)], dim=1)
    A = X.T @ X + ridge * torch.eye(X.shape[1], dtype=X.dtype)
    W = torch.linalg.solve(A, X.T @ seen)  # (3K + 1, 3)
    coef = W[:-1].T.reshape(3, 3, knots).float()
    # The constant is shared between the offset and the curves; keep it in the offset.
    cmap = ColorMap(coef, W[-1].float())
    err = (cmap.apply_rgb(sent.float()) - seen.float()).abs().mean().item() * 255
    cmap.mean_error_rgb = round(err, 3)
    cmap.gamut = seen.float().clamp(0, 1)
    return cmap
