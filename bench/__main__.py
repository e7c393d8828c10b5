"""`make bench`: Komu's benchmarks, each printed beside a baseline measured in the same run.

Runs on a scratch database: SQLite in a temporary folder by default, or PostgreSQL when KOMU_BENCH_DATABASE_URL is
set (a database that may be created and dropped). Results are recorded by hand in bench/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
import tempfile


def main() -> None:
    scratch = tempfile.mkdtemp(prefix="komu-bench-")
    os.environ["KOMU_VAR_DIR"] = scratch
    os.environ.pop("KOMU_DATABASE_URL", None)
    if os.environ.get("KOMU_BENCH_DATABASE_URL"):
        os.environ["KOMU_DATABASE_URL"] = os.environ["KOMU_BENCH_DATABASE_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "komu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import bench_attendance, bench_audit, bench_encryption, bench_registers

    print(f"# Komu benchmarks — python {sys.version.split()[0]}, database {os.environ.get('KOMU_DATABASE_URL', 'sqlite')}")
    for module in (bench_encryption, bench_audit, bench_attendance, bench_registers):
        for line in module.run():
            print(line)
    from bench import bench_notices  # issue 5 (komu.notices)

    print(*bench_notices.run(), sep="\n")
    from bench import bench_surveys  # issue 5 (komu.surveys)

    print(*bench_surveys.run(), sep="\n")
    from bench import bench_oneroster  # issue 8 (komu.oneroster)

    print(*bench_oneroster.run(), sep="\n")
    from bench import bench_gakureibo  # issue 3 (komu.rosters: 学齢簿 import)

    print(*bench_gakureibo.run(), sep="\n")
    from bench import bench_ops  # issue 9 (komu.ops: primary + standby, two app processes)

    print(*bench_ops.run(), sep="\n")
    from bench import bench_trips  # issue 7 (komu.trips: the chaperone's phone page)

    print(*bench_trips.run(), sep="\n")
    from bench import bench_progress  # issue 6 (komu.progress: national dashboard from precomputed rollups)

    print(*bench_progress.run(), sep="\n")


if __name__ == "__main__":
    main()
