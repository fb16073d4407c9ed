"""Benchmarks (``make bench`` runs ``python -m bench``): figures printed, not timed tests."""
