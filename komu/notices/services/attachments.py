"""Attachments of notices and letters: what may be attached, checked by the bytes themselves, never by the name.

PDF and images are recognised by their magic bytes; XLSX and DOCX are ZIP containers whose content types and main
part must be there (a renamed .zip or .exe is refused). Each file is size-limited; the bytes are kept encrypted in
the attachments store (komu.security.blobs), written before the row that names them.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from komu.core.errors import ValidationFailed
from komu.notices.models import Attachment, Letter, Notice
from komu.security.blobs import BlobReader, blob_open, blob_put, blob_read

MAX_BYTES = int(getattr(settings, "KOMU_NOTICE_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024))
MAX_FILES = 10

_ZIP_KINDS = {
    "xl/workbook.xml": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    "word/document.xml": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
}


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) of an allowed file, from its bytes; None when it is not one."""
    if data.startswith(b"%PDF-"):
        return "application/pdf", ".pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", ".jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", ".gif"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        if "[Content_Types].xml" not in names:
            return None
        for part, kind in _ZIP_KINDS.items():
            if part in names:
                return kind
    return None


def _clean_name(name: str, extension: str) -> str:
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*').strip() or "file"
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem[:150]}{extension}"


def check_uploads(uploads: list[Upload]) -> list[tuple[Upload, str, str]]:
    """Validate every upload before anything is written; raise one message naming each bad file."""
    if len(uploads) > MAX_FILES:
        raise ValidationFailed(_("添付できるファイルは %(n)d 個までです。") % {"n": MAX_FILES},
                               errors={"attachments": [_("添付できるファイルは %(n)d 個までです。") % {"n": MAX_FILES}]})
    checked = []
    problems = []
    for upload in uploads:
        if not upload.data:
            problems.append(_("%(name)s は空のファイルです。") % {"name": upload.filename})
            continue
        if len(upload.data) > MAX_BYTES:
            problems.append(_("%(name)s は大きすぎます（%(mb)d MB まで）。") % {
                "name": upload.filename, "mb": MAX_BYTES // (1024 * 1024)})
            continue
        kind = sniff(upload.data)
        if kind is None:
            problems.append(_("%(name)s は添付できない種類のファイルです。PDF・Excel（xlsx）・Word（docx）・画像（PNG・JPEG・GIF）を"
                              "添付してください。") % {"name": upload.filename})
            continue
        checked.append((upload, kind[0], _clean_name(upload.filename, kind[1])))
    if problems:
        raise ValidationFailed(problems[0], errors={"attachments": problems})
    return checked


def attachments_store(checked: list[tuple[Upload, str, str]], *, notice: Notice | None = None,
                      letter: Letter | None = None) -> list[Attachment]:
    stored = []
    for upload, content_type, filename in checked:
        attachment = Attachment(
            notice=notice, letter=letter, filename=filename, content_type=content_type, size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
        )
        blob_put(attachment, upload.data)
        attachment.full_clean()
        attachment.save()
        stored.append(attachment)
    return stored


def attachment_copy(source: Attachment, *, notice: Notice | None = None,
                    letter: Letter | None = None) -> Attachment:
    """A new attachment with the same bytes, sealed again under its own data key and bound to the new row."""
    copy = Attachment(notice=notice, letter=letter, filename=source.filename, content_type=source.content_type,
                      size=source.size, sha256=source.sha256)
    blob_put(copy, blob_read(source, sha256=source.sha256, size=source.size))
    copy.full_clean()
    copy.save()
    return copy


def attachment_reader(attachment: Attachment) -> BlobReader:
    """The decrypted bytes as a stream of chunks; its SHA-256 and size are checked against the row at the end."""
    return blob_open(attachment, sha256=attachment.sha256, size=attachment.size)


def attachment_bytes(attachment: Attachment) -> bytes:
    return b"".join(attachment_reader(attachment))
