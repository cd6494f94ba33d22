"""Research tools: look-ahead check, optimiser, walk-forward, Monte Carlo."""
