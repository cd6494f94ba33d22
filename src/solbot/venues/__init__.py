"""Venues implement the engine's Venue port: simulated (backtest and paper), ccxt (live)."""
