"""Attachments leave the database (issue 9), step 2: the base64 column goes; every row names its blob."""

import komu.security.blobs
import komu.security.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("rosters", "0002_attachments_to_blobs")]

    operations = [
        # A default first, so that the way back can add the column again to rows that exist.
        migrations.AlterField(
            model_name="transferdocument",
            name="content",
            field=komu.security.fields.EncryptedTextField(default="", verbose_name="PDF（base64）"),
        ),
        migrations.RemoveField(model_name="transferdocument", name="content"),
        migrations.AlterField(
            model_name="transferdocument",
            name="blob",
            field=komu.security.blobs.BlobField(editable=False, max_length=100, unique=True, verbose_name="保存名"),
        ),
    ]
