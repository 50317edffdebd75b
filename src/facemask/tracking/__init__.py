"""Experiment tracking with MLflow: one run per train job, nested under one parent run per results
folder and recipe."""
