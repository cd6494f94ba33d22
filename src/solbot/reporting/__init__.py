"""Backtest results: trades, metrics, JSON and HTML reports."""
