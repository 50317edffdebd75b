"""What a run reports: cross-validation and eval score tables, and the plots."""
