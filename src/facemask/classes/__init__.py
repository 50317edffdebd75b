"""The 18 classes: the three tasks and their labels, how classes are decided from probabilities,
and how decisions are scored."""
