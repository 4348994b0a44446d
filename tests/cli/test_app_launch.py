"""Plain `tenex-tui` opens the terminal app, wired to the local engine and `[ui]`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tenex_tui.cli import main
from tenex_tui.config import UiSettings
from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import StorageCorrupt
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp


class RecordingApp:
    """Stands in for `TenexApp`: records how `main` built it; `run` needs no terminal."""

    def __init__(
        self,
        backend_factory: Callable[[], Awaitable[ChatBackend]],
        *,
        ui: UiSettings | None = None,
        protected_paths: Sequence[Path] = (),
    ) -> None:
        self.backend_factory = backend_factory
        self.ui = ui
        self.protected_paths = tuple(protected_paths)
        self.ran = False
        self.return_code: int | None = None

    def run(self) -> None:
        self.ran = True


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[RecordingApp]:
    """Apps `main([])` built (the real class is checked to take the same arguments)."""
    apps: list[RecordingApp] = []
    real = inspect.signature(TenexApp.__init__).parameters
    assert list(real)[:2] == ["self", "backend_factory"]
    assert "ui" in real and "protected_paths" in real

    def build(*args: Any, **kwargs: Any) -> RecordingApp:
        app = RecordingApp(*args, **kwargs)
        apps.append(app)
        return app

    monkeypatch.setattr("tenex_tui.ui.app.TenexApp", build)
    return apps


def test_no_command_opens_the_app_with_ui_settings_and_a_local_backend(
    launched: list[RecordingApp], tenex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenex_home.mkdir(parents=True)
    (tenex_home / "config.toml").write_text(
        '[ui]\ntheme = "nord"\nshow_sidebar = false\n[ui.keys]\n"thread.new" = "ctrl+t"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert main([]) == 0
    [app] = launched
    assert app.ran
    assert app.ui == UiSettings(
        theme="nord", show_sidebar=False, keys={"thread.new": "ctrl+t"}
    )
    # The app never reads its own database (or journals) as an attachment.
    database = tenex_home / "tenex.db"
    assert {database, tenex_home / "tenex.db-wal"} <= set(app.protected_paths)

    async def open_and_close() -> tuple[bool, Path]:
        backend: ChatBackend = await app.backend_factory()
        try:
            assert isinstance(backend, LocalEngine)
            thread = await backend.create_thread(title="from the app")
            return thread.title == "from the app", backend.path
        finally:
            await backend.aclose()

    ok, path = asyncio.run(open_and_close())
    assert ok and path == tenex_home / "tenex.db"


def test_a_broken_config_stops_before_the_app(
    launched: list[RecordingApp], tenex_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenex_home.mkdir(parents=True)
    (tenex_home / "config.toml").write_text("[ui]\ntheme = 1\n", encoding="utf-8")
    assert main([]) == 2
    assert launched == []
    assert "line 2: ui.theme:" in capsys.readouterr().err


def test_a_corrupt_database_message_always_names_the_path_and_next_step(
    monkeypatch: pytest.MonkeyPatch,
    tenex_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whatever the engine's wording, the CLI adds the path and the way out."""

    async def broken(*args: Any, **kwargs: Any) -> LocalEngine:
        raise StorageCorrupt("the file is damaged")

    monkeypatch.setattr(LocalEngine, "open", broken)
    assert main(["threads", "list"]) == 1
    err = capsys.readouterr().err
    database = tenex_home / "tenex.db"
    assert err.startswith(f"tenex-tui: the file is damaged (database: {database})")
    assert f"`sqlite3 {database} .recover`" in err
    assert err.count("\n") == 1
