"""Training every run of a family in one call, and the parameters kept at chosen steps."""
