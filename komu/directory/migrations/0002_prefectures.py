"""The 47 prefectures (JIS X 0401) are fixed reference data, loaded with the schema."""

from django.db import migrations


def load(apps, schema_editor):
    from komu.core.codes import PREFECTURES

    Prefecture = apps.get_model("directory", "Prefecture")
    Prefecture.objects.bulk_create(
        [Prefecture(code=code, name=name) for code, name in PREFECTURES], ignore_conflicts=True
    )


def unload(apps, schema_editor):
    apps.get_model("directory", "Prefecture").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("directory", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
