"""Model fields that keep personal data encrypted at rest.

An encrypted field stores a Tink AES-GCM ciphertext whose associated data binds it to its table, column and row
("students_student.family_name.<uuid>"): a ciphertext copied into another row or column fails to open. Models with
encrypted fields therefore need a primary key chosen before the first save (a UUID default).

Reading the attribute decrypts lazily; a value loaded from the database and not changed is written back as the same
ciphertext. Encrypted columns cannot be filtered on: exact-match lookups go through a BlindIndexField, a keyed PRF
of the normalised plaintext.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from komu.security.keys import get_keyring


class Token(str):
    """A ciphertext as stored; distinguishes it from plaintext inside the model instance."""

    __slots__ = ()


class EncryptedQueryError(TypeError):
    pass


# Only "is it empty/absent": exact matches against "" or NULL (get_prep_value refuses any other value).
_ALLOWED_LOOKUPS = frozenset({"exact", "isnull"})


# Where an instance remembers the key of the row its ciphertexts were loaded from.
_LOADED_PK = "_komu_loaded_pk"


def associated_data(instance: models.Model, field: models.Field[Any, Any], pk: Any = None) -> str:
    """The binding of `field`'s ciphertext to its row: the instance's current key, or `pk` if given."""
    pk = instance.pk if pk is None else pk
    if pk is None:
        raise ValueError(
            f"{type(instance).__name__}: 暗号化フィールドには保存前に主キーが必要です（UUID の既定値を使ってください）。"
        )
    return f"{instance._meta.db_table}.{field.column}.{pk}"


def _loaded_binding(instance: models.Model, field: models.Field[Any, Any]) -> str:
    """The binding of a ciphertext loaded from the database: the row it was read from, even if the instance's
    key has been changed since (a copy about to be saved as a new row)."""
    return associated_data(instance, field, instance.__dict__.get(_LOADED_PK))


def _remember_loaded_pk(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    for field in instance._meta.concrete_fields:
        if isinstance(field, EncryptedMixin) and isinstance(instance.__dict__.get(field.attname), Token):
            instance.__dict__[_LOADED_PK] = instance.pk
            return


class _EncryptedDescriptor(DeferredAttribute):
    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Token):
            field = self.field
            assert isinstance(field, EncryptedMixin)
            associated = _loaded_binding(instance, field)
            text = get_keyring().decrypt(str(value), associated)
            plain = field.from_text(text)
            instance.__dict__[field.attname] = plain
            # Remember the ciphertext and its binding: an unchanged value is written back as it was.
            instance.__dict__[f"_sealed_{field.attname}"] = (plain, value, associated)
            return plain
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # A data descriptor, so that reads always pass through __get__ (and decrypt) even once loaded.
        instance.__dict__[self.field.attname] = value


class EncryptedMixin:
    """Shared by the encrypted field types; subclasses say how a value becomes text and back."""

    descriptor_class = _EncryptedDescriptor
    attname: str
    null: bool

    def contribute_to_class(self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)  # type: ignore[misc]
        if not cls._meta.abstract:
            # Infrastructure, as ImageField does: note which row the loaded ciphertexts belong to.
            models.signals.post_init.connect(
                _remember_loaded_pk, sender=cls, dispatch_uid=f"komu.security.loaded_pk.{cls._meta.label}"
            )

    def to_text(self, value: Any) -> str:
        return str(value)

    def from_text(self, text: str) -> Any:
        return text

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # A blank is stored as a blank (nothing to hide; `blank=True` fields are mostly empty): it reads
        # back as "" rather than as a ciphertext that could never open.
        if value is None or value == "":
            return value
        return Token(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None:
            return None
        if value == "" and not isinstance(self, EncryptedDateField):
            return ""
        if isinstance(value, Token) and not add:
            # Loaded and never read, so unchanged: leave the column as the database has it. Writing the
            # loaded ciphertext back could undo a key rotation that re-encrypted the row meanwhile (and
            # whose old key may be retired already), or another request's change to this field.
            return models.F(self.attname)
        keyring = get_keyring()
        associated = associated_data(model_instance, self)  # type: ignore[arg-type]
        primary = keyring.primary_key_id()
        if isinstance(value, Token):
            # Inserted as another row (a copied instance): the ciphertext is bound to the row it was loaded
            # from, so open it under that binding and seal it again for this row.
            binding = _loaded_binding(model_instance, self)  # type: ignore[arg-type]
            value = self.from_text(keyring.decrypt(str(value), binding))
        sealed = model_instance.__dict__.get(f"_sealed_{self.attname}")
        if (
            sealed is not None
            and sealed[0] == value
            and sealed[2] == associated
            and keyring.token_key_id(sealed[1]) == primary
        ):
            return sealed[1]
        token = Token(keyring.encrypt(self.to_text(value), associated))
        model_instance.__dict__[self.attname] = value
        model_instance.__dict__[f"_sealed_{self.attname}"] = (value, token, associated)
        return token

    def get_prep_value(self, value: Any) -> Any:
        if value is None or isinstance(value, Token) or value == "":
            return value
        raise EncryptedQueryError(
            f"暗号化された列 {self.attname} は検索条件に使えません。ブラインドインデックスを使ってください。"
        )

    def get_lookup(self, lookup_name: str) -> Any:
        # Pattern lookups (contains, startswith, regex, iexact) never pass through get_prep_value: without
        # this they would quietly compare the search text with ciphertext and find nothing, not fail loudly.
        if lookup_name not in _ALLOWED_LOOKUPS:
            raise EncryptedQueryError(
                f"暗号化された列 {self.attname} は検索条件（{lookup_name}）に使えません。"
                "ブラインドインデックスを使ってください。"
            )
        return super().get_lookup(lookup_name)  # type: ignore[misc]

    def get_transform(self, lookup_name: str) -> Any:
        raise EncryptedQueryError(
            f"暗号化された列 {self.attname} は検索条件（{lookup_name}）に使えません。"
            "ブラインドインデックスを使ってください。"
        )

    def to_python(self, value: Any) -> Any:
        return value


class EncryptedTextField(EncryptedMixin, models.TextField):  # type: ignore[misc,type-arg]
    """Personal text (names, addresses, phones, notes), encrypted and bound to its row."""


if TYPE_CHECKING:
    # For type checkers the column holds a date (it is stored as encrypted text, read back as datetime.date).
    _DateColumn = models.Field[datetime.date | None, datetime.date | None]
else:
    _DateColumn = models.TextField


class EncryptedDateField(EncryptedMixin, _DateColumn):  # type: ignore[misc]
    """A personal date (birth date) stored encrypted; reads back as datetime.date."""

    def to_text(self, value: Any) -> str:
        if not isinstance(value, datetime.date):
            raise TypeError(f"{self.attname}: 日付を指定してください。")
        return value.isoformat()

    def from_text(self, text: str) -> Any:
        return datetime.date.fromisoformat(text)

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return forms.DateField(required=not self.blank, **kwargs)


class BlindIndexField(models.CharField):  # type: ignore[type-arg]
    """A keyed hash of another field's normalised plaintext, for exact-match lookups without decrypting.

    `normalizer` folds the input the way a search should match (kana to one script, phone to digits); the index is
    recomputed on every save from the source field, so it can never drift from the data.
    """

    def __init__(
        self,
        *args: Any,
        source: str = "",
        normalizer: Callable[[str], str] | None = None,
        purpose: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        self.source = source
        self.normalizer = normalizer
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs.pop("normalizer", None)
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def lookup_value(self, raw: str) -> str:
        """The index value to filter by for a user's search input."""
        normalized = self.normalizer(raw) if self.normalizer else raw
        if not normalized:
            return ""
        return get_keyring().blind_index(self.purpose or self.source, normalized)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        source_value = getattr(model_instance, self.source)
        value = "" if not source_value else self.lookup_value(str(source_value))
        setattr(model_instance, self.attname, value)
        return value
