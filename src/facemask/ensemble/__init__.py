"""The vote of the trained members: how the models' votes combine, what it fits on out-of-fold
predictions, the ensemble bundle, and the pseudo labels of a second round."""
