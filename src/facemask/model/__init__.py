"""The classifier: timm backbones with a head per label scheme, their losses, and inference."""
