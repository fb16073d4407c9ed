"""shiftboard: rank image classifiers by effective robustness under distribution shift."""

__version__ = "0.1.0"
