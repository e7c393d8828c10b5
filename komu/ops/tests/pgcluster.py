"""Throw-away PostgreSQL 15 clusters for the replica, fault and backup tests: a primary and, when asked, a
streaming-replication standby made with pg_basebackup, each on its own loopback port in a temporary folder, with
Debian's tools. Never touches the machine's own cluster. As root the tools run as the `postgres` OS user
(initdb refuses root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("KOMU_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """None when the tools are here, otherwise why not."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "pg_dump", "psql"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL tools not found in {PG_BIN} ({tool})"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser not found (needed to run initdb as postgres)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_postgres(args), check=True, capture_output=True, text=True, timeout=180, **kw)  # type: ignore[call-overload]


class Cluster:
    def __init__(self, root: Path, name: str, port: int) -> None:
        self.root = root
        self.data = root / name
        self.port = port
        self.log = root / f"{name}.log"

    def url(self, db: str = "komu") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                "-c wal_level=replica -c max_wal_senders=5 -c hot_standby=on -c max_connections=60")
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
              "start"])

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                                         "stop"]), capture_output=True, text=True, timeout=120)

    def psql(self, sql: str, db: str = "postgres") -> str:
        out = _run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                    "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        return out.stdout.strip()

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.psql("SELECT 1")
                return
            except subprocess.CalledProcessError:
                time.sleep(0.3)
        raise TimeoutError(f"cluster on port {self.port} did not come up")


class Clusters:
    """A primary (and optionally a standby) in one temporary folder; `close()` stops them and removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="komu-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        self.primary = Cluster(self.root, "primary", free_port())
        self.standby: Cluster | None = None
        self.bouncer: Bouncer | None = None

    def init_primary(self) -> Cluster:
        _run([str(PG_BIN / "initdb"), "-D", str(self.primary.data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C.UTF-8"])
        self.primary.start()
        self.primary.wait_ready()
        return self.primary

    def add_standby(self) -> Cluster:
        standby = Cluster(self.root, "standby", free_port())
        _run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
              "-D", str(standby.data), "-X", "stream", "-R", "-c", "fast"])
        standby.start()
        standby.wait_ready()
        self.standby = standby
        return standby

    def wait_replayed(self, seconds: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        assert self.standby is not None
        target = self.primary.psql("SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done = self.standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done == "t":
                return
            time.sleep(0.2)
        raise TimeoutError("standby did not catch up")

    def add_bouncer(self) -> Bouncer:
        """PgBouncer with `komu` → the primary and, when there is one, `komu_standby` → the standby."""
        databases = {"komu": self.primary}
        if self.standby is not None:
            databases["komu_standby"] = self.standby
        self.bouncer = Bouncer(self.root, databases)
        return self.bouncer

    def close(self) -> None:
        if self.bouncer is not None:
            self.bouncer.stop()
        if self.standby is not None:
            self.standby.stop("immediate")
        self.primary.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Bouncer:
    """PgBouncer in session pooling (as deploy/pgbouncer/pgbouncer.ini) in front of the clusters, as `postgres`."""

    def __init__(self, root: Path, databases: dict[str, Cluster]) -> None:
        self.port = free_port()
        self.ini = root / "pgbouncer.ini"
        users = root / "userlist.txt"
        users.write_text('"postgres" ""\n')
        lines = ["[databases]"]
        lines += [f"{name} = host=127.0.0.1 port={cluster.port} dbname=komu" for name, cluster in databases.items()]
        lines += ["[pgbouncer]", "listen_addr = 127.0.0.1", f"listen_port = {self.port}", f"unix_socket_dir = {root}",
                  "auth_type = trust", f"auth_file = {users}", "pool_mode = session",
                  "server_reset_query = DISCARD ALL", "max_client_conn = 200", "default_pool_size = 20",
                  f"logfile = {root / 'pgbouncer.log'}", f"pidfile = {root / 'pgbouncer.pid'}"]
        self.ini.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            for path in (self.ini, users):
                shutil.chown(path, "postgres", "postgres")
        _run([PGBOUNCER, "-d", str(self.ini)])
        deadline = time.monotonic() + 20
        while not (root / "pgbouncer.pid").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("pgbouncer did not start")
            time.sleep(0.2)
        self.pidfile = root / "pgbouncer.pid"

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
