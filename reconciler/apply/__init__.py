"""apply layer."""
