"""Scores of samples and trained runs against the data's own noise floor."""
