"""gunicorn settings; command-line flags and GUNICORN_CMD_ARGS override them.

Timeouts nest: the database statement timeout (RUNSTATS_STATEMENT_TIMEOUT_MS,
5 s) < the stats lease (8 s) < the stats wait budget (12 s) < `timeout` here.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# Threads: a worker waiting on a slow query (a stats scan) keeps serving other
# requests on its other threads; the scans themselves are bounded per process
# (RUNSTATS_STATS_SCANS_PER_PROCESS, below the thread count) and in all.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# gunicorn turns a sync worker with threads into gthread: threads only for gthread.
threads = int(os.environ.get("GUNICORN_THREADS", "4" if worker_class == "gthread" else "1"))
# gunicorn 27's control socket is one per home directory: several masters on a host
# (the tests, the benchmarks) would share it, and stopping one waits on it.
control_socket_disable = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
backlog = 2048
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

# The request head: the app refuses a request line over 32 KiB (414) or a header line
# over 32 KiB (431) in its error envelope (runstats_app/request_limits.py), so gunicorn's
# own limits must let those through: its line limit stops at 8190, hence 0 (none); its
# header line limit cannot be lifted, so it is a backstop at twice the app's.
limit_request_line = 0
limit_request_field_size = 64 * 1024
limit_request_fields = 100


def on_starting(server):  # type: ignore[no-untyped-def]
    """Give the workers of this master a clean multiprocess metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="runstats-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    server.log.info("prometheus multiprocess dir: %s", directory)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Each worker offers to fold the maintained counts; a lease lets one fold at a time."""
    from runstats_app.stats.counts.fold import start_folding

    start_folding(worker.wsgi)
