"""A bad bundle's messages follow the screen's language: Japanese by default (the msgids), English on English
screens — with the same file, line and column either way."""

from __future__ import annotations

import pytest
from django.utils import translation

from komu.oneroster import bundle


def test_a_bundle_without_manifest_is_explained_in_the_screen_language() -> None:
    japanese = bundle.validate_bundle({}).errors
    with translation.override("en"):
        english = bundle.validate_bundle({}).errors
    assert [(e.file, e.line, e.column) for e in japanese] == [(e.file, e.line, e.column) for e in english]
    assert japanese[0].message == "manifest.csv がありません。OneRoster の一式には必ず含めてください。"
    assert english[0].message == "manifest.csv is missing. A OneRoster bundle must always include it."


def test_a_manifest_error_names_file_and_column_in_english() -> None:
    manifest = b"propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.1\r\n"
    with translation.override("en"):
        shown = [str(e) for e in bundle.validate_bundle({"manifest.csv": manifest}).errors]
    assert (
        "manifest.csv column “oneroster.version”: oneroster.version must be “1.2” (other versions cannot be "
        "imported)." in shown
    )


def test_an_unreadable_zip_is_refused_in_english() -> None:
    with translation.override("en"), pytest.raises(bundle.BundleReadError) as refused:
        bundle.read_zip(b"not a zip")
    assert str(refused.value).startswith("The file cannot be read as a ZIP file.")
