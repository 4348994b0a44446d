"""`tenex-tui keys …` and `tenex-tui serve` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tenex_tui.cli import main
from tenex_tui.core.errors import Unauthorized
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.server.run import exposure_warning


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_keys_create_list_revoke(
    capsys: pytest.CaptureFixture[str], tenex_home: Path
) -> None:
    code, out, err = run_cli(
        capsys,
        "keys",
        "create",
        "--workspace",
        "ws_x",
        "--user",
        "usr_y",
        "--name",
        "laptop",
    )
    assert code == 0
    token = out.strip()
    match = re.fullmatch(r"tnx_([a-z0-9]{8})_([A-Za-z0-9]{40})", token)
    assert match, out
    prefix, secret = match.groups()
    assert secret not in err and f"tnx_{prefix}_…" in err
    code, out, _ = run_cli(capsys, "keys", "list")
    assert (
        code == 0
        and f"tnx_{prefix}_…" in out
        and "ws_x/usr_y" in out
        and "laptop" in out
    )
    assert secret not in out
    code, out, _ = run_cli(capsys, "keys", "list", "--json")
    [item] = json.loads(out)["items"]
    assert (
        item["prefix"] == prefix
        and item["revoked_at"] is None
        and "secret_hash" not in item
    )
    code, out, _ = run_cli(
        capsys, "keys", "revoke", token
    )  # a whole key works, only its prefix is used
    assert code == 0 and out.strip() == f"revoked tnx_{prefix}_…"
    assert secret not in out
    code, _, err = run_cli(capsys, "keys", "revoke", prefix)
    assert code == 1 and "no active key" in err
    code, out, _ = run_cli(capsys, "keys", "list", "--json")
    assert json.loads(out)["items"][0]["revoked_at"] is not None
    code, _, err = run_cli(capsys, "keys", "create", "--workspace", "has space")
    assert code == 2


def test_binding_beyond_loopback_without_tls_warns() -> None:
    assert exposure_warning("127.0.0.1", tls=False) is None
    assert exposure_warning("localhost", tls=False) is None
    assert exposure_warning("::1", tls=False) is None
    warning = exposure_warning("0.0.0.0", tls=False)
    assert warning is not None and "without TLS" in warning
    assert exposure_warning("0.0.0.0", tls=True) is None


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


async def talk_to(url: str, token: str) -> None:
    remote = RemoteBackend(url, Secret(token))
    try:
        info = await remote.info()
        assert info.kind == "remote" and info.workspace == "Local" and info.online
        assert info.model is None and info.model_problem  # no provider configured
        thread = await remote.create_thread(title="over http")
        listed = await remote.list_threads(q="over")
        assert [t.id for t in listed.items] == [thread.id]
    finally:
        await remote.aclose()
    wrong = RemoteBackend(url, Secret(token[:-4] + "zzzz"))
    try:
        with pytest.raises(Unauthorized):
            await wrong.list_threads()
    finally:
        await wrong.aclose()


def test_serve_answers_keyed_requests_and_stops_on_ctrl_c(
    capsys: pytest.CaptureFixture[str], tenex_home: Path
) -> None:
    code, out, _ = run_cli(capsys, "keys", "create")
    assert code == 0
    token = out.strip()
    secret = token.split("_", 2)[2]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}
    }
    env["TENEX_HOME"] = str(tenex_home)
    child = subprocess.Popen(
        [sys.executable, "-m", "tenex_tui", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(child.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        while url is None:
            line = lines.get(timeout=30)
            seen.append(line)
            found = re.search(r"serving (http://127\.0\.0\.1:\d+)/api/v1/chat", line)
            url = found.group(1) if found else None
        asyncio.run(talk_to(url, token))
        child.send_signal(signal.SIGINT)
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    remaining = child.stdout.read() if child.stdout else ""
    while not lines.empty():
        seen.append(lines.get_nowait())
    text = "".join(seen) + remaining
    assert child.returncode in (0, 130), text
    assert "GET /api/v1/chat/threads 200" in text  # the access log: path, status…
    assert "q=over" not in text  # …never the query
    assert secret not in text
    assert f"key={token.split('_', 2)[1]}" in text
