"""A throwaway attachments store for tests: a folder of their own, as KOMU_STORAGE=filesystem would configure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def use_folder(settings: Any, folder: Path) -> Path:
    """Point MEDIA_ROOT and the "attachments" storage at `folder` (pytest-django's settings fixture resets both
    after the test, and Django drops its cached storages when STORAGES changes)."""
    settings.MEDIA_ROOT = folder
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(folder),
                "file_permissions_mode": 0o600,
                "directory_permissions_mode": 0o700,
            },
        },
    }
    return folder


def every_file(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- An S3-compatible store on loopback: moto's server, spoken to over HTTP exactly as a bucket would be ---------

S3_CREDENTIALS = {
    "access_key": "komu-test",
    "secret_key": "komu-test-secret",
    "region_name": "ap-northeast-1",
}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_s3(*buckets: str) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with `buckets` created; yields its endpoint URL. Skips the test when moto is
    not installed (it is in the dev extra)."""
    import pytest

    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = s3_client(endpoint)
        for bucket in buckets:
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_CREDENTIALS["region_name"]}
            )
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
        region_name=S3_CREDENTIALS["region_name"],
    )


def bucket_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = s3_client(endpoint)
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys)}


def use_s3(settings: Any, endpoint: str, bucket: str) -> None:
    """The "attachments" storage as KOMU_STORAGE=s3 configures it (komu/settings.py), against `endpoint`."""
    settings.KOMU_STORAGE = "s3"
    settings.KOMU_S3_BUCKET = bucket
    settings.KOMU_S3_ENDPOINT_URL = endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "addressing_style": "path",
                "default_acl": None,
                **S3_CREDENTIALS,
            },
        },
    }


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The same configuration as environment variables, for a `komu` subprocess."""
    return {
        "KOMU_STORAGE": "s3",
        "KOMU_S3_BUCKET": bucket,
        "KOMU_S3_ENDPOINT_URL": endpoint,
        "KOMU_S3_REGION": S3_CREDENTIALS["region_name"],
        "KOMU_S3_ACCESS_KEY_ID": S3_CREDENTIALS["access_key"],
        "KOMU_S3_SECRET_ACCESS_KEY": S3_CREDENTIALS["secret_key"],
        "KOMU_S3_ADDRESSING_STYLE": "path",
    }
