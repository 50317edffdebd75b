"""The configuration: the schema that validates it, its typed settings, and the rules across keys."""
