# The school marks the parts of an accepted change it handled by hand: nullable columns, no table rewrite.

import django.db.models.deletion
import komu.security.fields
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rosters', '0004_amendment_not_applied'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='rosteramendment',
            name='not_applied_resolved_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='対応済みにした日時'),
        ),
        migrations.AddField(
            model_name='rosteramendment',
            name='not_applied_resolved_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='rosteramendment',
            name='not_applied_note',
            field=komu.security.fields.EncryptedTextField(blank=True, default='', verbose_name='対応の内容'),
        ),
    ]
