"""Observation: the observer that runs the registered fact providers (the parsers are the backends'), the
summary of an observation, and the tool versions."""
