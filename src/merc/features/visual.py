"""Visual extractor: face crops, frames or video clips → appearance descriptors (offline).

``image-stats`` describes each image with an HSV colour histogram, a HOG-style grid of
gradient-orientation histograms and global brightness/contrast — cheap, deterministic and
dependency-free (numpy + Pillow). Each utterance's visual item may be

- an image file (``.png``, ``.jpg``, ...; e.g. a face crop),
- a directory of frame images (sorted by name; up to ``max_frames`` sampled evenly), or
- a video file (needs the optional ``av`` package — PyAV; frames sampled evenly), or the span
  of one utterance in it, ``FILE#t=START,END`` (seconds).

At utterance level frames are averaged into one ``[d]`` vector; ``level="frame"`` keeps
``[T, d]``. Facial-expression features: the ``fer`` extractor (:mod:`merc.features.expression`);
other learned visual features (DenseNet/OpenFace faces, CLIP, ...): bring your own arrays in the
user format (see docs/features.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import ConfigError, DataError, MercError
from merc.features.base import Extractor
from merc.features.text import check_level
from merc.registry import EXTRACTORS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _image_module() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise MercError("the image-stats extractor needs Pillow; pip install pillow") from exc
    return Image


def split_span(path: str | Path) -> tuple[Path, tuple[float, float] | None]:
    """``clip.mp4#t=1.5,3.2`` → (``clip.mp4``, (1.5, 3.2)): a video item may name its utterance's
    time span (seconds) with a media-fragment suffix; other items have no span."""
    text = str(path)
    if "#t=" not in text:
        return Path(text), None
    base, frag = text.rsplit("#t=", 1)
    try:
        start, end = (float(x) for x in frag.split(","))
    except ValueError:
        raise DataError(text, "bad time span", field="video",
                        fix="write the span as FILE#t=START,END in seconds") from None
    if not 0 <= start < end:
        raise DataError(text, "time span must have 0 ≤ START < END", field="video")
    return Path(base), (start, end)


def load_frames(path: str | Path, max_frames: int) -> list[np.ndarray]:
    """Up to ``max_frames`` ``[H, W, 3]`` uint8 RGB frames (native size, sampled evenly) of an image,
    a directory of frame images, or a video file or span (``FILE#t=START,END``)."""
    Image = _image_module()
    p, span = split_span(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(p, "frame directory holds no images", field="video",
                            fix=f"put frames ({', '.join(IMAGE_SUFFIXES)}) in it")
        images = [Image.open(f) for f in _even(files, max_frames)]
    elif not p.is_file():
        raise DataError(p, "image/video file not found", field="video", fix="check the path in the video column")
    elif p.suffix.lower() in IMAGE_SUFFIXES:
        try:
            images = [Image.open(p)]
        except OSError:
            raise DataError(p, "cannot decode image", field="video", fix="use png or jpeg files") from None
    else:
        images = _video_frames(p, max_frames, span)
    try:
        return [np.asarray(im.convert("RGB")) for im in images]
    except OSError:
        raise DataError(p, "cannot decode image", field="video", fix="use png or jpeg files") from None


def read_frames(path: str | Path, max_frames: int, size: int) -> np.ndarray:
    """``[T, size, size, 3]`` uint8 RGB frames of an image, frame directory or video file."""
    Image = _image_module()
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR))
                     for f in load_frames(path, max_frames)])


def _even(items: list[Any], k: int) -> list[Any]:
    """At most ``k`` of ``items``, evenly spaced, first and last included."""
    picks = np.unique(np.linspace(0, len(items) - 1, min(k, len(items))).round().astype(int))
    return [items[i] for i in picks]


def _video_frames(path: Path, max_frames: int, span: tuple[float, float] | None = None) -> list[Any]:
    try:
        import av
    except ImportError:
        raise DataError(path, "reading video files needs the optional 'av' package", field="video",
                        fix="pip install av (or merc[visual]), or extract frames into a directory") from None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # without a span and with a known frame count, only the sampled frames are converted
            total = stream.frames if span is None else 0
            keep = set(_even(list(range(total)), max_frames)) if total > 0 else None
            if span is not None and span[0] > 0 and stream.time_base:
                container.seek(int(span[0] / stream.time_base), stream=stream)  # the keyframe before START
            frames = []
            for i, f in enumerate(container.decode(stream)):
                if span is not None and f.time is not None and f.time >= span[1]:
                    break
                if (span is None or (f.time is not None and f.time >= span[0])) and (keep is None or i in keep):
                    frames.append(f.to_image())
    except Exception as exc:  # noqa: BLE001 - PyAV raises many error types
        raise DataError(path, f"cannot decode video ({type(exc).__name__})", field="video",
                        fix="check the file or extract frames into a directory") from None
    if not frames:
        raise DataError(path, "video has no frames" + (f" in {span[0]}-{span[1]} s" if span else ""), field="video")
    return _even(frames, max_frames)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Vectorised RGB → HSV for float arrays in ``[0, 1]``, shape ``[..., 3]``."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc, minc = rgb.max(-1), rgb.min(-1)
    delta = maxc - minc
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(maxc == r, ((g - b) / safe) % 6, np.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    h = np.where(delta > 0, h, 0.0)
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1.0), 0.0)
    return np.stack([h, s, maxc], axis=-1)


class ImageStatsExtractor(Extractor):
    """Colour histograms + HOG-style gradient histograms + brightness statistics.

    Args:
        level: ``utterance`` (frames averaged) or ``frame`` (``[T, d]``).
        size: images are resized to ``size × size`` first.
        color_bins: histogram bins per HSV channel.
        grid: the image is split into ``grid × grid`` cells for gradient histograms.
        orientations: unsigned gradient-orientation bins per cell.
        max_frames: frames sampled from a frame directory or video.

    Shapes:
        - output (utterance): ``[3 * color_bins + grid² * orientations + 2]`` (170 by default).
    """

    modality = "v"
    name = "image-stats"

    def __init__(self, level: str = "utterance", size: int = 64, color_bins: int = 8, grid: int = 4,
                 orientations: int = 9, max_frames: int = 8) -> None:
        self.level = check_level(level)
        if size < 8 or color_bins < 2 or grid < 1 or orientations < 2 or max_frames < 1 or size % grid:
            raise ConfigError("image-stats: need size ≥ 8 divisible by grid, color_bins ≥ 2, orientations ≥ 2, "
                              "max_frames ≥ 1")
        self.size, self.color_bins, self.grid = int(size), int(color_bins), int(grid)
        self.orientations, self.max_frames = int(orientations), int(max_frames)

    @property
    def dim(self) -> int:
        return 3 * self.color_bins + self.grid ** 2 * self.orientations + 2

    def settings(self) -> dict[str, Any]:
        return {"level": self.level, "size": self.size, "color_bins": self.color_bins, "grid": self.grid,
                "orientations": self.orientations, "max_frames": self.max_frames}

    def describe(self, frames: np.ndarray) -> np.ndarray:
        """``[T, dim]`` descriptors of ``[T, S, S, 3]`` uint8 frames (vectorised over frames)."""
        rgb = frames.astype(np.float32) / 255.0
        T = rgb.shape[0]
        hsv = rgb_to_hsv(rgb).reshape(T, -1, 3)
        bins = np.minimum((hsv * self.color_bins).astype(np.int64), self.color_bins - 1)  # (T, P, 3)
        offsets = (np.arange(T)[:, None, None] * 3 + np.arange(3)[None, None, :]) * self.color_bins
        color = np.bincount((bins + offsets).ravel(), minlength=T * 3 * self.color_bins)
        color = color.reshape(T, 3 * self.color_bins) / hsv.shape[1]
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (T, S, S)
        gy, gx = np.gradient(gray, axis=(1, 2))
        magnitude = np.hypot(gx, gy)
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        obin = np.minimum((angle / np.pi * self.orientations).astype(np.int64), self.orientations - 1)
        cell = self.size // self.grid
        rows = (np.arange(self.size) // cell)[:, None] * self.grid + (np.arange(self.size) // cell)[None, :]
        index = (np.arange(T)[:, None, None] * self.grid ** 2 + rows[None]) * self.orientations + obin
        hog = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=T * self.grid ** 2 * self.orientations)
        hog = hog.reshape(T, self.grid ** 2, self.orientations)
        hog = hog / (np.linalg.norm(hog, axis=-1, keepdims=True) + 1e-6)  # per-cell normalisation
        stats = np.stack([gray.reshape(T, -1).mean(1), gray.reshape(T, -1).std(1)], axis=1)
        return np.concatenate([color, hog.reshape(T, -1), stats], axis=1).astype(np.float32)

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        out = []
        for path in items:  # one decode per item; descriptors are vectorised over its frames
            desc = self.describe(read_frames(path, self.max_frames, self.size))
            out.append(desc if self.level == "frame" else desc.mean(axis=0))
        return out


@EXTRACTORS.register("image-stats")
def image_stats(level: str = "utterance", size: int = 64, color_bins: int = 8, grid: int = 4, orientations: int = 9,
                max_frames: int = 8) -> ImageStatsExtractor:
    """Colour + gradient-orientation statistics of face crops, frame folders or videos (170-d)."""
    return ImageStatsExtractor(level, size, color_bins, grid, orientations, max_frames)
