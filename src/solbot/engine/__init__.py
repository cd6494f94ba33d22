"""Synchronous, deterministic trading engine. Time comes only through a Clock."""
