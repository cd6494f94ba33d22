"""HTTP API (FastAPI) and Prometheus metrics of the running bot."""
