"""Indicators: vectorised (TA-Lib) for research, incremental for live; they agree."""
