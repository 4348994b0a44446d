"""Benchmarks: one command prints each figure beside its DESIGN.md §8 budget."""
