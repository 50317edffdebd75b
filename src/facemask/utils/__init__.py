"""Plumbing every stage uses: errors, logs, atomic files, CPUs, GPUs, devices, code digests."""
