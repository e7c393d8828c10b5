"""Attachments leave the database (issue 9), step 2: the base64 column goes; every row names its blob."""

import komu.security.blobs
import komu.security.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("surveys", "0002_attachments_to_blobs")]

    operations = [
        # A default first, so that the way back can add the column again to rows that exist.
        migrations.AlterField(
            model_name="surveyfile",
            name="content",
            field=komu.security.fields.EncryptedTextField(default="", verbose_name="内容（base64）"),
        ),
        migrations.RemoveField(model_name="surveyfile", name="content"),
        migrations.AlterField(
            model_name="surveyfile",
            name="blob",
            field=komu.security.blobs.BlobField(editable=False, max_length=100, unique=True, verbose_name="保存名"),
        ),
    ]
