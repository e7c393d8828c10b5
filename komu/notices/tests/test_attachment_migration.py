"""Migrations 0004/0005: attachments kept as base64 inside the database move into the attachments store, and back."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from komu.notices.models import Attachment
from komu.security import blobs
from komu.security.tests.blobstore import every_file, use_folder

BEFORE = ("notices", "0003_letter_via_board")
AFTER = ("notices", "0005_drop_base64_content")
PDF = b"%PDF-1.4\n" + "校外学習のしおり".encode() * 100


def migrate(target: tuple[str, str]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_base64_attachments_move_into_the_store_and_back(tmp_path: Path, settings: Any) -> None:
    store = use_folder(settings, tmp_path / "media")
    try:
        old = migrate(BEFORE).get_model("notices", "Attachment")
        row = old.objects.create(
            filename="しおり.pdf",
            content_type="application/pdf",
            size=len(PDF),
            sha256=hashlib.sha256(PDF).hexdigest(),
            content=base64.b64encode(PDF).decode("ascii"),
        )

        migrate(AFTER)
        moved = Attachment.objects.get(pk=row.pk)
        assert list(every_file(store)) == [moved.blob]
        assert blobs.blob_read(moved, sha256=moved.sha256, size=moved.size) == PDF

        back = migrate(BEFORE).get_model("notices", "Attachment").objects.get(pk=row.pk)
        assert base64.b64decode(back.content) == PDF
        assert every_file(store) == {}  # the files go once the way back has committed
    finally:
        # Back to the app's latest migration, whatever comes after these.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("notices"))
