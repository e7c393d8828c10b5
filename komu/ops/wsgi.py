"""The WSGI entry point for production behind nginx (deploy/systemd/komu-web@.service): Komu's application with the
client's address restored from X-Forwarded-For.

Behind the proxy, REMOTE_ADDR is the proxy itself; the audit log and the sign-in lockout need the client. When the
direct peer is one of KOMU_TRUSTED_PROXIES (comma-separated addresses or networks; default loopback only), the
last address of X-Forwarded-For — the one that proxy saw — becomes REMOTE_ADDR. From any other peer the header is
ignored, so a client cannot choose the address that is logged."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any

from komu.wsgi import application as komu_application

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: str) -> list[Network]:
    out: list[Network] = []
    for item in value.split(","):
        if item.strip():
            out.append(ipaddress.ip_network(item.strip(), strict=False))
    return out


def with_forwarded_client(app: Callable[..., Iterable[bytes]], trusted: list[Network]) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        try:
            peer = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            peer = None
        if forwarded and peer is not None and any(peer in net for net in trusted):
            candidate = forwarded.split(",")[-1].strip()
            with contextlib.suppress(ValueError):  # not an address: keep the peer's
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(candidate))
        return app(environ, start_response)

    return wrapped


application = with_forwarded_client(
    komu_application, _networks(os.environ.get("KOMU_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"))
)
