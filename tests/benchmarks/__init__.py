"""Benchmarks: each prints its figures and a ratio against a reference measured in the same run.

Run with ``make bench`` (all) or ``python -m tests.benchmarks ingest --n 50000``.
"""
