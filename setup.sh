#!/usr/bin/env bash
# Create .venv with torch, timm, Snakemake and the facemask package (editable). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch, torchvision" 2>/dev/null || python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -r requirements.txt
# MTCNN for the face crop: facenet-pytorch pins torch < 2.3 and numpy < 2, which its detector does
# not need, so it goes in without its dependencies (torch, torchvision, requests and tqdm are here).
python -m pip install -q --no-deps -e . "facenet-pytorch==2.6.0"
# On a GPU box, check that this torch can use the GPU; when it cannot, say why and how to fix it.
if command -v nvidia-smi >/dev/null 2>&1; then
    python -c "import sys, torch; from facemask.utils.devices import gpu_diagnosis
torch.cuda.is_available() or sys.exit('setup: torch cannot use the GPU: ' + gpu_diagnosis())"
fi
