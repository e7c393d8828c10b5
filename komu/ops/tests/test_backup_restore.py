"""`komu backup` of the demo on PostgreSQL, `komu restore` into a fresh empty database: every table equal, row
for row, and every blob of the attachments store equal, byte for byte and decrypted; the key file never in the
backup; a damaged or mismatched backup refused before anything is written."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import psycopg
import pytest

from komu.ops.tests import pgcluster
from komu.ops.tests.stack import komu, komu_env
from komu.ops.tests.test_backup_blobs import READ_BACK, SEED, run
from komu.security.tests.blobstore import every_file


def table_digests(url: str) -> dict[str, tuple[int, str]]:
    """Each table's row count and an MD5 over its rows in a fixed order."""
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
        out = {}
        for name in names:
            count, digest = conn.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\')) FROM "{name}" t'
            ).fetchone()
            out[name] = (count, digest)
        return out


@pytest.mark.clusters
def test_demo_backup_restores_into_an_empty_database_with_every_table_equal(tmp_path: Path) -> None:
    clusters = pgcluster.Clusters()
    try:
        primary = clusters.init_primary()
        primary.psql("CREATE DATABASE komu")
        var = tmp_path / "var"
        env = komu_env(var, primary.url())
        for args in (("migrate", "--noinput"), ("demo",)):
            done = komu(env, *args)
            assert done.returncode == 0, done.stderr[-3000:]
        seed_env = {**env, "DJANGO_SETTINGS_MODULE": "komu.settings"}
        referenced = json.loads(run(seed_env, "-c", SEED).strip().splitlines()[-1])
        attachment = var / "media" / "directory-bulk-load" / "schools.csv"
        attachment.parent.mkdir(parents=True)
        attachment.write_text("学校コード,学校名\n", encoding="utf-8")

        made = komu(env, "backup", "--output", str(tmp_path / "backups"))
        assert made.returncode == 0, made.stderr[-3000:]
        assert "鍵ファイルは含まれていません" in made.stdout
        (folder,) = (tmp_path / "backups").iterdir()
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["engine"] == "postgresql"
        assert manifest["tables"]["students_student"] > 900
        assert set(manifest["files"]) == {"database.dump", "media.tar"}
        assert sorted(manifest["blobs"]) == referenced
        with tarfile.open(folder / "media.tar") as tar:
            assert tar.getnames() == ["directory-bulk-load", "directory-bulk-load/schools.csv"]
        # Never the keys: no byte of the key file's key material is in any file of the backup.
        key_file = var / "keys" / "komu-keys.json"
        keys = json.loads(key_file.read_text())
        secrets = [json.dumps(v) for k, v in keys.items() if k != "format"]
        for file in (f for f in folder.rglob("*") if f.is_file()):
            blob = file.read_bytes()
            assert not any(s.encode() in blob for s in secrets), file.name

        # The operator restores into a new database with the key file brought back from its own storage.
        primary.psql("CREATE DATABASE komu_restore")
        restored_var = tmp_path / "restored"
        (restored_var / "keys").mkdir(parents=True)
        shutil.copy2(key_file, restored_var / "keys" / "komu-keys.json")
        env2 = komu_env(restored_var, primary.url("komu_restore"))
        env2["KOMU_CREATE_KEY_FILE"] = "0"
        back = komu(env2, "restore", str(folder))
        assert back.returncode == 0, back.stderr[-3000:]
        assert "監査ログ" in back.stdout

        original, restored = table_digests(primary.url()), table_digests(primary.url("komu_restore"))
        assert len(original) > 40
        assert restored == original
        assert (restored_var / "media" / "directory-bulk-load" / "schools.csv").read_text(encoding="utf-8") == \
            "学校コード,学校名\n"
        # Every blob the database names is back under its name, byte for byte, and opens with the restored rows.
        original_files = every_file(var / "media" / "blobs")
        assert every_file(restored_var / "media" / "blobs") == {
            name.removeprefix("blobs/"): original_files[name.removeprefix("blobs/")] for name in referenced}
        env2_py = {**env2, "DJANGO_SETTINGS_MODULE": "komu.settings"}
        assert json.loads(run(env2_py, "-c", READ_BACK)) == json.loads(run(seed_env, "-c", READ_BACK))
        # The restored install works: its audit chain verifies with the key file and the demo signs in.
        verify = komu(env2, "audit", "verify")
        assert verify.returncode == 0, verify.stderr

        # A second restore onto the now full database is refused, and so is a backup with a damaged file.
        again = komu(env2, "restore", str(folder))
        assert again.returncode != 0 and "空のデータベース" in again.stderr
        primary.psql("CREATE DATABASE komu_damaged")
        damaged = tmp_path / "damaged"
        shutil.copytree(folder, damaged)
        with (damaged / "database.dump").open("r+b") as handle:
            handle.seek(200)
            handle.write(b"\x00\x01")
        env3 = komu_env(tmp_path / "var3", primary.url("komu_damaged"))
        bad = komu(env3, "restore", str(damaged))
        assert bad.returncode != 0 and "チェックサム" in bad.stderr
        assert primary.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db="komu_damaged") == "0"

        # With the wrong key file the restore stops at the audit chain and says which setting to check.
        primary.psql("CREATE DATABASE komu_wrongkey")
        env4 = komu_env(tmp_path / "var4", primary.url("komu_wrongkey"))
        env4["KOMU_CREATE_KEY_FILE"] = "1"
        wrong = komu(env4, "restore", str(folder))
        assert wrong.returncode != 0 and "KOMU_KEY_FILE" in wrong.stderr

        # As the documented owner role `komu` (not a superuser) the restore works too: everything but the audit
        # log's DDL guard, which only a superuser can create; the command says so, and the guard goes in after.
        assert primary.psql("SELECT count(*) FROM pg_event_trigger", db="komu") == "2"
        primary.psql("CREATE ROLE komu LOGIN")
        primary.psql("CREATE DATABASE komu_owned OWNER komu")
        owned_var = tmp_path / "owned"
        (owned_var / "keys").mkdir(parents=True)
        shutil.copy2(key_file, owned_var / "keys" / "komu-keys.json")
        owned_url = primary.url("komu_owned").replace("postgres://postgres@", "postgres://komu@")
        env5 = komu_env(owned_var, owned_url)
        env5["KOMU_CREATE_KEY_FILE"] = "0"
        owned = komu(env5, "restore", str(folder))
        assert owned.returncode == 0, owned.stderr[-3000:]
        assert "DDL ガード" in owned.stdout and "sudo -u postgres psql" in owned.stdout
        assert table_digests(primary.url("komu_owned")) == original
        assert primary.psql("SELECT count(*) FROM pg_event_trigger", db="komu_owned") == "0"
        assert not list(Path(tempfile.gettempdir()).glob("komu-restore-*.list"))
        assert komu(env5, "audit", "ddl-guard").returncode != 0
        installed = komu({**env5, "KOMU_DATABASE_URL": primary.url("komu_owned")}, "audit", "ddl-guard", "--install")
        assert installed.returncode == 0, installed.stderr[-3000:]
        assert komu(env5, "audit", "ddl-guard").returncode == 0
        assert komu(env5, "audit", "verify").returncode == 0
    finally:
        clusters.close()


