"""Benchmarks: ``python -m tests.benchmarks`` prints a markdown table (not collected by pytest)."""
