"""The runstats benchmark suite: `make bench` (full) and `make bench-quick` (CI).

Entry point: `python -m bench.run --help`. Results: bench/RESULTS.md.
"""
