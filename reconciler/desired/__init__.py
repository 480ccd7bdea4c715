"""desired layer."""
