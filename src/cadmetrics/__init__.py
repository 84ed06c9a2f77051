"""cadmetrics."""
