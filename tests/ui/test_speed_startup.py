"""Start-up speed work keeps its behaviour: the backend opens alongside the first frame
but reaches the screen after it, start-up objects are frozen out of the collector's
passes (and thawed on exit), and neither the command modules nor the settings'
validators are loaded to open the app."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from tenex_tui.config import Settings, load_settings
from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import StorageError
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.widgets.key_footer import KeyFooter
from tests.ui.harness import NOW, ready, wait_until

REPO = Path(__file__).resolve().parents[2]


async def test_the_backend_opens_during_the_first_frame_and_arrives_after_it(
    engine: LocalEngine,
) -> None:
    frames = 0
    frames_when_called: list[int] = []

    async def factory() -> ChatBackend:
        frames_when_called.append(frames)
        return engine

    app = TenexApp(factory, now=lambda: NOW, own_backend=False)
    display = app._display

    def counting(screen: Any, renderable: Any) -> None:
        nonlocal frames
        if renderable is not None:
            frames += 1
        display(screen, renderable)

    app._display = counting  # type: ignore[method-assign]
    async with app.run_test() as pilot:
        await ready(pilot)
        assert frames_when_called == [0]  # started before anything was painted
        assert app.chat.backend is engine


async def test_a_backend_that_cannot_open_is_reported_after_the_first_frame() -> None:
    async def factory() -> ChatBackend:
        raise StorageError("the database is locked")

    app = TenexApp(factory, now=lambda: NOW)
    async with app.run_test() as pilot:
        await wait_until(
            pilot,
            lambda: "Could not open" in app.chat.threads.empty_text,
            "the failure in the sidebar",
        )
        assert app.backend is None


async def test_start_up_objects_are_frozen_while_the_app_runs(
    engine: LocalEngine,
) -> None:
    before = gc.get_freeze_count()

    async def factory() -> ChatBackend:
        return engine

    async with TenexApp(factory, now=lambda: NOW, own_backend=False).run_test() as p:
        await ready(p)
        assert gc.get_freeze_count() > before
    # Thawed on exit: a process that runs many apps keeps none of their garbage.
    assert gc.get_freeze_count() == before


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_opening_the_app_loads_no_command_module() -> None:
    out = _run(
        """
        import sys
        from tenex_tui.cli import build_parser
        args = build_parser().parse_args(["--home", "/tmp/x", "--remote"])
        print(args.command, args.home, args.remote,
              sorted(m for m in sys.modules if m.startswith("tenex_tui.cli.cmd_")))
        """
    )
    assert out == "None /tmp/x True []"


def test_a_command_line_with_a_command_still_finds_it() -> None:
    out = _run(
        """
        from tenex_tui.cli import build_parser
        args = build_parser().parse_args(["--home", "/tmp/x", "threads", "list"])
        print(args.command, callable(args.handler))
        """
    )
    assert out == "threads True"


def test_a_missing_config_file_builds_no_validator(tmp_path: Path) -> None:
    missing = tmp_path / "config.toml"
    out = _run(
        f"""
        from pathlib import Path
        from tenex_tui.config import RemoteSettings, Settings, UiSettings, load_settings
        settings = load_settings(Path({str(missing)!r}))
        built = [m.__pydantic_complete__ for m in (Settings, RemoteSettings, UiSettings)]
        print(built, settings.ui.theme, settings.remote.api_base)
        """
    )
    assert out == "[False, False, False] textual-dark https://api.10ex.ai"
    assert load_settings(missing) == Settings()
    assert load_settings(missing).model_dump() == Settings().model_dump()


class FooterScreen(Screen[None]):
    # One action per key: `Footer` shows only the first key of each action.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "ring", "Ring"),
        Binding("y", "again", "Again"),
    ]

    def action_ring(self) -> None:
        self.app.bell()

    def action_again(self) -> None:
        self.app.bell()

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield KeyFooter()


class FooterHost(App[None]):
    def on_mount(self) -> None:
        self.push_screen(FooterScreen())

    def action_zed(self) -> None:
        self.bell()


async def test_the_footer_is_rebuilt_once_for_a_burst_of_binding_changes() -> None:
    app = FooterHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: len(footer.children) >= 2, "the keys")
        assert any("Again" in str(key.render()) for key in footer.children)
        rebuilds = 0
        mount_all = footer.mount_all

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal rebuilds
            rebuilds += 1
            return mount_all(*args, **kwargs)

        footer.mount_all = counting  # type: ignore[method-assign]
        for _ in range(3):  # a burst of signals with nothing new to show
            app.screen.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert rebuilds == 0
        app.bind("z", "zed", description="Zed")
        for _ in range(3):  # a burst that does change the keys
            app.screen.refresh_bindings()
        await wait_until(
            pilot,
            lambda: any("Zed" in str(key.render()) for key in footer.children),
            "the new key",
        )
        await pilot.pause()
        assert rebuilds == 1


async def test_a_rebuild_after_its_screen_closed_does_nothing() -> None:
    # A focus change schedules a rebuild; the screen may close before it runs (the
    # knowledge browser closing right after a key), leaving the footer detached.
    app = FooterHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        footer = screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: len(footer.children) >= 2, "the keys")
        app.pop_screen()
        await wait_until(pilot, lambda: app.screen is not screen, "the screen to close")
        await wait_until(pilot, lambda: not footer.is_attached, "the footer detached")
        await footer.recompose()  # the late rebuild: no NoScreen, no crash
        assert app.return_code is None
