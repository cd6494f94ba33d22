"""Market data: bar arrays, validation, importers, Parquet store, synthetic market."""
