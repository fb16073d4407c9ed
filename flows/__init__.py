"""Prefect flows: evaluation of (model, test set) pairs."""
