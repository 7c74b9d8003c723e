"""A virtual camera filming a flat printed sheet: the simulator's transforms (`blocks simulate`).

Geometry is a pinhole camera looking at the page plane (tilt, roll, distance, drift), moving
smoothly over the clip; then what a cheap webcam adds: uneven and changing light, a colour cast,
focus and motion blur, sensor noise, JPEG. Per-frame video rendering, so numpy/OpenCV on uint8
frames (the differentiable, batched EOT transforms for training live in the other modules here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraSettings:
    size: tuple[int, int] = (640, 480)  # frame width, height in px
    fov_deg: float = 60.0  # horizontal field of view
    fill: tuple[float, float] = (0.5, 0.85)  # region of interest's side / frame's shorter side (distance)
    tilt_deg: float = 30.0  # max out-of-plane tilt, about both page axes
    tilt_fixed: bool = False  # True: always tilted by exactly tilt_deg, about an axis that turns smoothly
    roll_deg: float = 25.0  # max rotation in the image plane
    drift: float = 0.12  # how far the region's centre wanders, as a fraction of the frame
    cycles: float = 1.5  # roughly how many back-and-forth moves over the clip
    brightness: tuple[float, float] = (0.65, 1.15)  # overall gain
    gradient: float = 0.3  # light falling off across the frame, fraction of the gain
    color_cast: float = 0.08  # per-channel gain shift (white balance)
    blur_sigma: tuple[float, float] = (0.2, 0.9)  # focus blur, px
    motion_blur: float = 0.4  # motion-blur length as a share of the pixels moved since the last frame
    noise_std: float = 0.02  # sensor noise std, in [0, 1] units
    jpeg_quality: tuple[int, int] = (45, 90)
    margin_px: int = 6  # the points that must stay visible keep this far from the frame's edge


@dataclass(frozen=True)
class Pose:
    """One frame's camera pose, in angles (rad), fill fraction and image-plane offset (px)."""

    yaw: float
    pitch: float
    roll: float
    fill: float
    dx: float
    dy: float


def smooth_signal(n: int, rng: np.random.Generator, cycles: float, terms: int = 3) -> np.ndarray:
    """(n,) values in [-1, 1] that change smoothly: a few sines of random frequency and phase."""
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    out = np.zeros_like(t)
    for k in range(terms):
        freq = cycles * rng.uniform(0.5, 1.5) * (k + 1) ** 0.5
        out += rng.uniform(0.5, 1.0) / (k + 1) * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    peak = np.abs(out).max()
    return out / peak if peak > 0 else out


def sample_poses(n: int, s: CameraSettings, rng: np.random.Generator) -> list[Pose]:
    """A smooth camera path of n poses (hand-held: tilting, turning, moving in and out)."""
    sig = lambda: smooth_signal(n, rng, s.cycles)  # noqa: E731
    yaw, pitch, roll, dist, dx, dy = sig(), sig(), sig(), sig(), sig(), sig()
    if s.tilt_fixed:  # a fixed obliqueness (for measuring hit rate against tilt): only its axis moves
        axis = math.pi * yaw + rng.uniform(0, 2 * math.pi)
        yaw, pitch = np.cos(axis), np.sin(axis)
    lo, hi = s.fill
    w, h = s.size
    return [Pose(yaw=math.radians(s.tilt_deg) * yaw[i], pitch=math.radians(s.tilt_deg) * pitch[i],
                 roll=math.radians(s.roll_deg) * roll[i], fill=lo + (hi - lo) * (dist[i] + 1) / 2,
                 dx=s.drift * w * dx[i], dy=s.drift * h * dy[i]) for i in range(n)]


def focal_px(s: CameraSettings) -> float:
    return (s.size[0] / 2) / math.tan(math.radians(s.fov_deg) / 2)


def pose_homography(pose: Pose, roi_mm: tuple[float, float, float, float], s: CameraSettings) -> np.ndarray:
    """(3, 3) homography from page mm to frame px for a camera looking at the centre of the
    region of interest roi_mm = (x, y, w, h) from a distance where it spans `pose.fill`."""
    x, y, w, h = roi_mm
    f = focal_px(s)
    W, H = s.size
    side = max(w, h)
    distance = f * side / (pose.fill * min(W, H))
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    cp, sp = math.cos(pose.pitch), math.sin(pose.pitch)
    cr, sr = math.cos(pose.roll), math.sin(pose.roll)
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    R = Rz @ Rx @ Ry
    K = np.array([[f, 0, W / 2 + pose.dx], [0, f, H / 2 + pose.dy], [0, 0, 1]])
    # plane point (X, Y, 0) centred on the region -> camera: R @ (X, Y, 0) + (0, 0, distance)
    Rt = np.column_stack([R[:, 0], R[:, 1], [0, 0, distance]])
    centre = np.array([[1, 0, -(x + w / 2)], [0, 1, -(y + h / 2)], [0, 0, 1]])
    return K @ Rt @ centre


def keep_in_frame(H: np.ndarray, points_mm: np.ndarray, s: CameraSettings) -> np.ndarray:
    """Zoom out and shift (in the image plane) just enough that every point lands inside the
    frame with `margin_px` to spare, as a person would reframe. points_mm: (N, 2)."""
    pts = cv2.perspectiveTransform(points_mm.reshape(1, -1, 2).astype(np.float64), H)[0]
    W, H_ = s.size
    m = s.margin_px
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = hi - lo
    room = np.array([W - 2 * m, H_ - 2 * m], dtype=np.float64)
    k = min(1.0, float(np.min(room / np.maximum(span, 1e-6))))
    centre = (lo + hi) / 2
    A = np.array([[k, 0, centre[0] * (1 - k)], [0, k, centre[1] * (1 - k)], [0, 0, 1]])
    lo, hi = centre + (lo - centre) * k, centre + (hi - centre) * k
    shift = np.maximum(m - lo, 0) - np.maximum(hi - (np.array([W, H_]) - m), 0)
    T = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]])
    return T @ A @ H


def make_background(s: CameraSettings, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: a smooth, coloured, slightly cluttered surface the sheet lies on."""
    W, H = s.size
    coarse = rng.uniform(40, 200, size=(4, 5, 3)).astype(np.float32)
    img = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 18, size=(H, W)).astype(np.float32), (0, 0), 2.0)
    img = np.ascontiguousarray(img + grain[..., None])
    for _ in range(int(rng.integers(3, 8))):  # clutter: things on the table
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p = rng.uniform([0, 0], [W, H]).astype(int)
        q = p + rng.uniform(-W / 4, W / 4, 2).astype(int)
        cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Look:
    """One frame's photometric state."""

    gain: float
    gradient: tuple[float, float]  # light gradient along x and y, fraction of the gain
    cast: tuple[float, float, float]  # per-channel gains, B, G, R
    blur_sigma: float
    noise_std: float
    jpeg_quality: int


def sample_looks(n: int, s: CameraSettings, rng: np.random.Generator) -> list[Look]:
    """Slowly changing light (clouds, a lamp, auto-exposure) and per-frame sensor effects."""
    sig = lambda: smooth_signal(n, rng, s.cycles * 0.7)  # noqa: E731
    gain, gx, gy, cb, cr, blur = sig(), sig(), sig(), sig(), sig(), sig()
    lo, hi = s.brightness
    blo, bhi = s.blur_sigma
    qlo, qhi = s.jpeg_quality
    return [Look(gain=lo + (hi - lo) * (gain[i] + 1) / 2,
                 gradient=(s.gradient * gx[i], s.gradient * gy[i]),
                 cast=(1 + s.color_cast * cb[i], 1.0, 1 + s.color_cast * cr[i]),
                 blur_sigma=blo + (bhi - blo) * (blur[i] + 1) / 2,
                 noise_std=s.noise_std * float(rng.uniform(0.5, 1.0)),
                 jpeg_quality=int(rng.integers(qlo, qhi + 1))) for i in range(n)]


def film_page(page_bgr: np.ndarray, px_per_mm: float, H_mm: np.ndarray, background: np.ndarray,
              mask: np.ndarray | None = None) -> np.ndarray:
    """The page (rendered at px_per_mm) laid over the background through H_mm (page mm -> frame px).
    mask: (h, w) uint8 over the page, 255 where it is kept (a card cut out of it); None: all of it."""
    S = np.array([[1 / px_per_mm, 0, 0], [0, 1 / px_per_mm, 0], [0, 0, 1]])
    h, w = background.shape[:2]
    if mask is None:
        frame = background.copy()
        cv2.warpPerspective(page_bgr, H_mm @ S, (w, h), dst=frame, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_TRANSPARENT)
        return frame
    sheet = cv2.warpPerspective(page_bgr, H_mm @ S, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(mask, H_mm @ S, (w, h), flags=cv2.INTER_LINEAR)[..., None].astype(np.float32) / 255
    return (sheet * alpha + background * (1 - alpha)).round().astype(np.uint8)


def apply_lighting(frame: np.ndarray, look: Look) -> np.ndarray:
    """Gain, a linear light gradient across the frame and a colour cast; uint8 in, float32 out."""
    h, w = frame.shape[:2]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    light = look.gain * (1 + look.gradient[0] * xs + look.gradient[1] * ys)  # (h, w)
    return frame.astype(np.float32) * light[..., None] * np.float32(look.cast)


def apply_blur(img: np.ndarray, sigma: float, motion_px: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Focus blur (Gaussian, sigma px) and motion blur along motion_px (the move during exposure)."""
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    length = math.hypot(*motion_px)
    if length >= 1.5:
        k = int(math.ceil(length)) | 1
        kernel = np.zeros((k, k), np.float32)
        c = k // 2
        ux, uy = motion_px[0] / length, motion_px[1] / length
        cv2.line(kernel, (int(round(c - ux * c)), int(round(c - uy * c))),
                 (int(round(c + ux * c)), int(round(c + uy * c))), 1.0, 1)
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
    return img


def add_sensor_noise(img: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent noise (more in the bright parts, like shot noise) plus a read-noise floor.
    img: float32 in 0..255 units."""
    level = np.sqrt(np.clip(img, 0, 255) / 255.0) * 0.7 + 0.3
    return img + rng.standard_normal(img.shape, dtype=np.float32) * (std * 255.0) * level


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at `quality` (what a webcam or a phone does). uint8 in and out."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def develop(frame: np.ndarray, look: Look, motion_px: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Light, blur, noise and JPEG on a clean frame: (H, W, 3) uint8 -> uint8."""
    img = apply_lighting(frame, look)
    img = apply_blur(img, look.blur_sigma, motion_px)
    img = add_sensor_noise(img, look.noise_std, rng)
    return jpeg(np.clip(img, 0, 255).astype(np.uint8), look.jpeg_quality)
