"""The printed card the held views train on: `blocks print`'s block (printing.layout.card_layout)
with its four ArUco markers, cut out beyond them, as a texture at the patch's own texel density.
tests/test_card.py renders a printed card and this one and compares them."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.distance import DEFAULT_SIZE_MM
from printing.layout import CARD_BORDER_MM, BlockPlace, card_layout
from printing.settings import DEFAULT_MARKER_MM
from printing.markers import marker_modules


@dataclass(frozen=True)
class CardLayout:
    """The printed card around the patch: `blocks print`'s block with its four markers, cut out
    `border_mm` beyond them (printing.layout.card_layout). Only the lengths' ratios to size_mm
    matter here. Defaults: the 50 mm block with 12 mm markers that `blocks print` draws by default."""

    size_mm: float = DEFAULT_SIZE_MM
    marker_mm: float = DEFAULT_MARKER_MM
    border_mm: float = CARD_BORDER_MM

    @functools.cached_property
    def printed(self) -> BlockPlace:
        return card_layout(self.size_mm, self.marker_mm, self.border_mm)

    @property
    def reach(self) -> float:
        """From the patch edge to the card's edge, in patch sides."""
        return self.printed.x_mm / self.size_mm


def card_base(patch_px: int, layout: CardLayout, device="cpu") -> tuple[torch.Tensor, int]:
    """(1, C, C) in {0, 1}, white paper with four ArUco markers (ids 0-3, as block 0 of a sheet),
    and the patch's offset in it: the card texture at the patch's own texel density."""
    card, off = _card_base(patch_px, layout)
    return card.to(device), off


@functools.lru_cache(maxsize=8)
def _card_base(patch_px: int, layout: CardLayout) -> tuple[torch.Tensor, int]:
    """card_base on the CPU, drawn once per side and layout (every training step asks for it).

    printing's card, lengths snapped to whole texels: each marker stays a square of m texels
    (6 at least, one per module) one quiet zone q from its patch corner, as the PDF draws it."""
    block = layout.printed  # in card mm: the card's edge at 0
    first = block.markers[0]  # the top-left one (CORNERS order)
    texels = patch_px / block.width_mm  # per mm
    m = max(6, round(first.size_mm * texels))  # a marker's 6 modules need 6 texels at least
    q = max(1, round((block.x_mm - first.x_mm - first.size_mm) * texels))
    off = q + m + max(1, round(first.x_mm * texels))  # the border: from the card's edge to the marker
    C = patch_px + 2 * off
    card = torch.ones(1, C, C)
    near, far = off - q - m, off + patch_px + q  # marker top-left, before and after the patch
    for marker in block.markers:
        x = near if marker.x_mm < block.x_mm else far
        y = near if marker.y_mm < block.y_mm else far
        bits = torch.from_numpy(marker_modules(marker.id)).float()[None, None]
        card[:, y:y + m, x:x + m] = 1 - F.interpolate(bits, size=(m, m), mode="nearest")[0]
    return card, off


def card_texture(patch: torch.Tensor, layout: CardLayout) -> tuple[torch.Tensor, int]:
    """patch (3, P, P) -> (the printed card, (3, C, C) in [0, 1] before the print response: the
    patch on card_base's white paper with its markers; the patch's offset in it)."""
    P, dev = patch.shape[-1], patch.device
    base, off = card_base(P, layout, dev)
    return F.pad(patch, (off, off, off, off)) + base * hole(base.shape[-1], off, P, dev), off


def hole(C: int, off: int, P: int, dev) -> torch.Tensor:
    """(1, C, C): 1 on the card, 0 where the patch goes."""
    m = torch.ones(1, C, C, device=dev)
    m[:, off:off + P, off:off + P] = 0
    return m


