"""Endpoints and statistics: pure functions of time series (no files, no engine)."""
