"""Benchmarks: speed, retrieval quality, safety. Commands that print figures, never timed tests."""
