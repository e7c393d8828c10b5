from __future__ import annotations

import ipaddress
from typing import Any

from komu.ops.wsgi import with_forwarded_client


def _seen(environ: dict[str, Any]) -> str:
    seen: dict[str, str] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["addr"] = env["REMOTE_ADDR"]
        return [b""]

    wrapped = with_forwarded_client(app, [ipaddress.ip_network("127.0.0.1/32")])
    wrapped(environ, lambda *a: None)
    return seen["addr"]


def test_the_proxy_s_last_hop_becomes_the_client_address() -> None:
    assert _seen({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.5"}) == "203.0.113.5"


def test_a_client_cannot_choose_its_address() -> None:
    assert _seen({"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.0.0.1"}) == "203.0.113.9"


def test_garbage_in_the_header_is_ignored() -> None:
    assert _seen({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-address"}) == "127.0.0.1"
    assert _seen({"REMOTE_ADDR": "127.0.0.1"}) == "127.0.0.1"
