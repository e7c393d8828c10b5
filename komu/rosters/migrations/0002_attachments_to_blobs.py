"""Attachments leave the database (issue 9): each transfer PDF becomes an encrypted file in the attachments store
(komu.security.blobs), the row keeping its name and its data key. Step 1: the new columns, then the bytes moved.
Step 2 (0003_drop_base64_content) drops the base64 column."""

import komu.security.blobs
import komu.security.fields
from django.db import migrations, models


def forwards(apps, schema_editor):
    komu.security.blobs.migrate_column_to_blobs(apps.get_model("rosters", "TransferDocument"), size_field="size")


def backwards(apps, schema_editor):
    komu.security.blobs.migrate_blobs_to_column(apps.get_model("rosters", "TransferDocument"))


class Migration(migrations.Migration):

    dependencies = [("rosters", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="transferdocument",
            name="blob",
            field=komu.security.blobs.BlobField(default="", editable=False, max_length=100, verbose_name="保存名"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="transferdocument",
            name="blob_key",
            field=komu.security.fields.EncryptedTextField(default="", verbose_name="ファイルの暗号鍵"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="transferdocument",
            name="size",
            field=models.PositiveIntegerField(default=0, verbose_name="大きさ"),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, backwards),
    ]
