"""Runners that wire the engine to venues and data: backtest now, live/paper later."""
