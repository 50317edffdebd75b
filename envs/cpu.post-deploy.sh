#!/usr/bin/env bash
# Run by Snakemake in a new conda environment, from the working directory (the repository root):
# this package (src/facemask), editable and without its dependencies, which the environment has.
set -euo pipefail
python -m pip install --no-deps -e .
