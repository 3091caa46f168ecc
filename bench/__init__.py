"""Benchmarks that start the real stack, print their numbers and stop within a bounded time."""
