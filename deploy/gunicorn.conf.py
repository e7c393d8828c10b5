"""gunicorn settings for Komu (deploy/systemd/komu-web@.service: `gunicorn -c /etc/komu/gunicorn.conf.py`)."""

import multiprocessing
import os

bind = os.environ.get("KOMU_BIND", "127.0.0.1:8001")
# Synchronous workers: Komu's requests are short; (2 × cores) + 1 is gunicorn's rule of thumb — per machine: with
# two instances on one machine set KOMU_WORKERS (in komu.env) to about half of it.
workers = int(os.environ.get("KOMU_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 60
graceful_timeout = 30
# Recycle workers now and then (memory of large imports is returned to the OS), staggered.
max_requests = 2000
max_requests_jitter = 200
# Komu writes its own structured access line (route name, status, duration, request id — no path, no query):
# gunicorn's access log would write paths and query strings, which may hold a pupil's id or a searched name.
accesslog = None
errorlog = "-"
forwarded_allow_ips = "127.0.0.1"
# No gunicornc control socket (gunicorn 25.1+): its default under $HOME (/opt/komu) is read-only in the unit
# (ProtectSystem=strict) and would be one path for both instances on a machine; reloads use systemctl (HUP).
control_socket_disable = True


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Tell prometheus_client a worker is gone, so its live gauges are not summed any more."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
