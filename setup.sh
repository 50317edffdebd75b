#!/usr/bin/env bash
# Create .venv with torch, timm, Snakemake and the facemask package (editable). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch, torchvision" 2>/dev/null || python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -r requirements.txt
python -m pip install -q --no-deps -e .
