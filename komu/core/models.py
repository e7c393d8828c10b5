"""Base models shared by the domain apps. No domain imports here."""

from __future__ import annotations

import uuid

from django.db import models


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class PersonalDataModel(TimestampedModel):
    """A model that holds personal data: a UUID key chosen before the first save, because every encrypted field
    binds its ciphertext to the row's key (see komu.security.fields)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True
