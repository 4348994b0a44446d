"""Fixtures for every test: an isolated home, and no network beyond loopback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host in {"127.0.0.1", "::1", "localhost"} or host.startswith("127.")
    # Unix sockets (str/bytes paths) never leave the machine.
    return isinstance(address, str | bytes)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach the network: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection that is not to loopback (oterm's ALLOW_MODEL_REQUESTS idea)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def tenex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config and data at a fresh folder; clear every provider variable."""
    home = tmp_path / "tenex-home"
    monkeypatch.setenv("TENEX_HOME", str(home))
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "TENEX_MODEL",
        "TENEX_API_KEY",
        "TENEX_API_BASE",
    ):
        monkeypatch.delenv(name, raising=False)
    return home
