"""What the tests share besides fixtures (those live in the conftest.py files).

api                driving the API in process: create_run, change_status, walking the list
errors             the one error envelope, and where an error points
stats              the stats endpoints: a test's own cache and runs (by tag), headers, leases
contract           the contract's statuses and system keys, written out apart from the app
filter_cases       bad filter_query documents with where their errors point
filter_oracle      a plain-Python reading of filter_query, to compare the list against
filter_strategies  hypothesis strategies for filter_query trees over chosen leaves
app                the app under test: its backends, test settings, schema and tokens
databases          databases a test creates and drops
servers            gunicorn and the flask CLI in subprocesses; a live app seen from outside
services           a private PostgreSQL, redis-server and a TCP proxy to break
stacks             those three together, migrated and loaded with demo data
redis_ha           Redis Sentinel (master, replica, three Sentinels) and a Redis Cluster
probes             what multi-process tests watch from outside the app
metrics            reading the app's Prometheus metrics in process
browser            the homepage in Chromium: pages that report problems, screenshots
homepage           steps on the homepage that more than one browser test takes
"""
