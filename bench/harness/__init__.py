"""Plumbing the measurements share, one job a module.

`errors` (the harness broke), `processes` (flask CLI, clean environments),
`servers` (gunicorn with CPU accounting), `client` (HTTP), `load` (wrk or its
Python fallback), `clients` (threads released together), `metrics` (Prometheus
samples), `cpu` (CPU time of process trees and Redis), `sql` (timed and explained
statements), `traffic` (paced background clients), `scans` (stats scans running,
from pg_stat_activity), `users` (the bench's own tokens and what they wrote),
`stats` (medians, percentiles), `formatting` (numbers and tables as the report
shows them), `machine` (what the report says about the host).
"""
