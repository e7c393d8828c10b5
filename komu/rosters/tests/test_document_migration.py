"""Migrations 0002/0003: the signed transfer PDFs kept as base64 inside the database move into the attachments
store with their size, and back."""

from __future__ import annotations

import base64
import datetime
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from komu.rosters.models import TransferDocument
from komu.security import blobs
from komu.security.tests.blobstore import every_file, use_folder
from komu.testing.world import build_world

BEFORE = ("rosters", "0001_initial")
AFTER = ("rosters", "0003_drop_base64_content")
PDF = b"%PDF-1.4\n" + "在学証明書".encode() * 300 + b"\n%%EOF\n"


def migrate(target: tuple[str, str]) -> Any:
    MigrationExecutor(connection).migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_transfer_pdfs_move_into_the_store_with_their_size_and_back(tmp_path: Path, settings: Any) -> None:
    store = use_folder(settings, tmp_path / "media")
    world = build_world()
    pupil = next(iter(world.students.values()))
    try:
        old = migrate(BEFORE)
        package = old.get_model("rosters", "TransferPackage").objects.create(
            student_id=pupil.pk,
            from_school_id=world.school_a.pk,
            departure_date=datetime.date(2026, 11, 30),
            record="{}",
            created_by_id=world.user("principal_a").pk,
        )
        document = old.get_model("rosters", "TransferDocument").objects.create(
            package=package,
            kind="zaigaku",
            content=base64.b64encode(PDF).decode("ascii"),
            sha256=hashlib.sha256(PDF).hexdigest(),
            signature="sig",
            signed_by_id=world.user("principal_a").pk,
            signed_at=timezone.now(),
        )

        migrate(AFTER)
        moved = TransferDocument.objects.get(pk=document.pk)
        assert moved.size == len(PDF) and list(every_file(store)) == [moved.blob]
        assert blobs.blob_read(moved, sha256=moved.sha256, size=moved.size) == PDF

        back = migrate(BEFORE).get_model("rosters", "TransferDocument").objects.get(pk=document.pk)
        assert base64.b64decode(back.content) == PDF
        assert every_file(store) == {}
    finally:
        # Back to the app's latest migration, whatever comes after these.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("rosters"))
