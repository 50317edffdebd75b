"""Predicting photos with a trained ensemble, and the `facemask` command."""
