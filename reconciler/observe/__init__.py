"""Observation: one pure parser module per tool, and the observer that runs the commands."""
