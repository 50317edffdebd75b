"""Training one (model, fold): the recipe, the epochs, validation, resume, the load-time check."""
