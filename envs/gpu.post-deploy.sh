#!/usr/bin/env bash
# Run by Snakemake in a new conda environment, from the working directory (the repository root):
# this package (src/facemask), editable and without its dependencies, which the environment has, and
# MTCNN for the face crop (facenet-pytorch pins torch < 2.3 and numpy < 2, which its detector does
# not need: installed without its dependencies, as ./setup.sh does).
set -euo pipefail
python -m pip install --no-deps -e . "facenet-pytorch==2.6.0"
