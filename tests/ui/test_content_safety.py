"""Untrusted text on screen: markup injection (T29), renderer robustness (T30), link
schemes (T31), bidi and invisible characters (T32), overprint (T33), server errors (T35)."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.segment import Segment
from textual.app import App
from textual.widget import Widget
from textual.widgets import Markdown

from tenex_tui.core.errors import ModelError
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.render import SafeMarkdown
from tenex_tui.ui.screens.modals import LinkModal
from tenex_tui.ui.widgets.message_view import MessageView
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import make_app, ready, settle, shown, wait_until

INJECTIONS = [
    "[@click=app.quit]Q3 plan[/]",
    "[link=file:///etc/passwd]x[/link]",
    "[bold red]",
    "[/",
    "[/INST]",
    "json [true, false]",
    "an unterminated [b",
    "\\[x]",
    "[$accent]",
]
ALLOWED_ACTIONS = {"app.open_link", "screen.regenerate_reply", "screen.continue_reply"}


def _segments(widget: Widget) -> Iterator[Segment]:
    if widget.region.area == 0:
        return
    for line in widget.render_lines(widget.region.reset_offset):
        yield from line


def _screen_text(app: App[None]) -> str:
    parts = []
    for widget in app.screen.query("*"):
        if widget.region.area and not widget.children:
            parts.append("".join(segment.text for segment in _segments(widget)))
    return "\n".join(parts)


def _check_no_injected_actions(app: App[None]) -> None:
    for widget in app.screen.query("*"):
        for segment in _segments(widget):
            style = segment.style
            if style is None:
                continue
            assert style.link is None, (widget, segment)
            action = style.meta.get("@click")
            if action is not None:
                name = action[0] if isinstance(action, tuple) else action
                assert name in ALLOWED_ACTIONS or name.startswith("link("), (
                    widget,
                    action,
                )


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_markup_in_titles_messages_and_errors_is_shown_literally(
    engine: LocalEngine, llm: ScriptedLLM, payload: str
) -> None:
    """T29: literal text, no MarkupError, no click or link meta, nothing dropped."""
    thread = await engine.create_thread(title="T " + payload)
    llm.enqueue("A " + payload + " B")
    async for _ in engine.send_message(thread.id, "U " + payload):
        pass
    llm.enqueue(error=ModelError("E " + payload))
    async for _ in engine.regenerate(thread.id):
        pass
    async with make_app(engine).run_test(size=(120, 30)) as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        await settle(pilot)
        text = _screen_text(app)
        assert "T " + payload in text
        assert "U " + payload in text
        assert "E " + payload in text
        _check_no_injected_actions(app)
        app.notify("N " + payload, markup=False)  # the app's own pattern for notices
        await pilot.pause()


async def test_a_failed_send_notice_with_markup_and_escapes_does_not_crash(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """T35: an error body with markup and an OSC sequence is shown as text."""
    thread = await engine.create_thread(title="errors")
    nasty = '{"error":"[@click=app.quit]x[/] \x1b]0;pwn\x07"}'
    llm.enqueue(error=ModelError(nasty))
    async with make_app(engine).run_test(size=(120, 30)) as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        for key in "hello":
            await pilot.press(key)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any(
                isinstance(v, MessageView) and v.message.status == "error"
                for v in app.chat.pane.views
            ),
            "the failed reply",
        )
        text = _screen_text(app)
        assert "[@click=app.quit]x[/] ␛]0;pwn␇" in text
        _check_no_injected_actions(app)
        assert app.is_running


async def test_bidi_invisible_and_overprint_characters_are_made_visible(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """T32/T33: Trojan-source controls, zero-width and tag characters, `\\r` overprint."""
    thread = await engine.create_thread(title="admin\u202eexe.txt")
    reply = "rm -rf ~\rls -la zero\u200bwidth tag\U000e0041\U000e0042 end"
    llm.enqueue(reply)
    async for _ in engine.send_message(thread.id, "q"):
        pass
    async with make_app(engine).run_test(size=(120, 30)) as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        text = _screen_text(app)
        assert "admin⟨U+202E⟩exe.txt" in text
        assert "rm -rf ~␍ls -la" in text
        assert "zero⟨U+200B⟩width" in text
        assert "tag⟨hidden: 2⟩ end" in text
        stored = (await engine.list_messages(thread.id)).items[-1]
        assert stored.content == reply  # the original is kept


class _Recorder:
    def __init__(self) -> None:
        self.opened: list[str] = []


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    """Record URLs that would reach the browser (Textual's own `open_url`)."""
    recorder = _Recorder()

    def record(_app: App[None], url: str, *, new_tab: bool = True) -> None:
        recorder.opened.append(url)

    monkeypatch.setattr(App, "open_url", record)
    return recorder


async def test_http_links_open_only_after_showing_the_real_target(
    engine: LocalEngine, llm: ScriptedLLM, opened: _Recorder
) -> None:
    """T31: a deceptive label shows the real host first; Esc opens nothing."""
    thread = await engine.create_thread(title="links")
    llm.enqueue("Log in at [https://bank.example](https://evil.example/login) today.")
    async for _ in engine.send_message(thread.id, "q"):
        pass
    async with make_app(engine).run_test(size=(120, 30)) as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        app.action_open_link("https://evil.example/login")
        await wait_until(pilot, lambda: isinstance(app.screen, LinkModal), "confirm")
        await pilot.pause()
        shown_text = _screen_text(app)
        assert "host: evil.example" in shown_text
        await pilot.press("escape")
        assert opened.opened == []
        # The same through a click on the link in the finished message.
        view = [v for v in app.chat.pane.views if isinstance(v, MessageView)][-1]
        lines = [list(line) for line in view.render_lines(view.region.reset_offset)]
        row, column = next(
            (y, sum(len(s.text) for s in line[:i]))
            for y, line in enumerate(lines)
            for i, s in enumerate(line)
            if s.style is not None and "@click" in s.style.meta
        )
        await pilot.click(view, offset=(column + 2, row))
        await wait_until(pilot, lambda: isinstance(app.screen, LinkModal), "confirm")
        await pilot.press("enter")
        await pilot.pause()
        assert opened.opened == ["https://evil.example/login"]


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("javascript:alert(1)", "javascript"),
        ("JAVASCRIPT:alert(1)", "javascript"),
        ("\x01javascript:alert(1)", "␁javascript"),
        ("file:///etc/passwd", "file"),
        ("data:text/html,<b>x</b>", "data"),
        ("vscode://settings", "vscode"),
        ("ssh://host", "ssh"),
    ],
)
async def test_other_schemes_are_blocked_with_a_notice(
    engine: LocalEngine, opened: _Recorder, url: str, scheme: str
) -> None:
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.action_open_link(url)
        app.open_url(url)  # even a direct call is checked
        await pilot.pause()
        assert not isinstance(app.screen, LinkModal)
        assert opened.opened == []
        notices = [str(n.message) for n in app._notifications]
        assert f"blocked link: {scheme}" in notices


async def test_links_clicked_while_streaming_go_through_the_same_check(
    engine: LocalEngine, llm: ScriptedLLM, opened: _Recorder
) -> None:
    thread = await engine.create_thread(title="live link")
    reply = llm.enqueue("See [x](vscode://evil) ", "and more", hold_at=(1,))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await pilot.press("q", "enter")
        await wait_until(pilot, lambda: reply.held(1).is_set(), "held")
        await wait_until(
            pilot, lambda: app.chat.pane.reply_view is not None, "live view"
        )
        live = app.chat.pane.reply_view
        assert live is not None
        markdown = live.query_one(Markdown)
        await wait_until(pilot, lambda: bool(live.shown_text), "text")
        markdown.post_message(Markdown.LinkClicked(markdown, "vscode://evil"))
        await pilot.pause()
        assert opened.opened == []
        assert "blocked link: vscode" in [str(n.message) for n in app._notifications]
        reply.release(1)
        await settle(pilot)


_TOKENS = [
    *"[]\\`*_#|-<>/()!:\n \t\"'=@$ab1",
    "```",
    "```python\n",
    "|---|",
    "<b>",
    "</b>",
    "[/",
    "[@click=app.quit]",
    "[link=x]",
    "\x1b",
    "\x1b]52;c;QQ==\x07",
    "\u202e",
    "\r",
    "é",
    "漢",
    "\U0001f600",
    "\U000e0041",
]
_MARKDOWNISH = st.lists(st.sampled_from(_TOKENS), max_size=200).map("".join)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=_MARKDOWNISH, width=st.integers(min_value=8, max_value=120))
def test_safe_markdown_renders_anything_without_raising(text: str, width: int) -> None:
    """T30 (renderer): brackets, fences, tables, HTML, escapes — never an exception,
    never a live escape sequence or OSC 8 link in the output."""
    console = Console(width=width, file=io.StringIO(), legacy_windows=False)
    with console.capture() as captured:
        console.print(SafeMarkdown(text))
    output = captured.get()
    assert "\x1b]" not in output
    assert "\u202e" not in output


async def test_streaming_adversarial_text_keeps_the_app_and_the_draft(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """T30 (app): hostile Markdown streamed in random chunk sizes; the app survives and
    a half-typed prompt in another thread's composer is untouched."""
    rng = random.Random(7)
    corpus = (
        "# [/mnt/data/models]\n\n```python\nprint('[/INST]')\n"  # an unclosed fence
        "| a | b |\n|---|\n| [true, false] | `x` |\n"
        "<script>alert(1)</script> [@click=app.quit]q[/] \x1b]52;c;QQ==\x07 "
        "*unclosed **bold _mixed ~~strike\n" + "漢字é" * 50 + "\n" + "x" * 3000
    )
    chunks: list[str] = []
    position = 0
    while position < len(corpus):
        size = rng.randint(1, 40)
        chunks.append(corpus[position : position + size])
        position += size
    thread = await engine.create_thread(title="stress")
    drafts = await engine.create_thread(title="drafts")
    await engine.update_thread(drafts.id, draft="half-typed [b prompt")
    llm.enqueue(*chunks)
    async with make_app(engine).run_test(size=(100, 30)) as pilot:
        app: TenexApp = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await pilot.press("g", "o", "enter")
        await wait_until(
            pilot,
            lambda: any(
                isinstance(v, MessageView) and v.message.role == "assistant"
                for v in app.chat.pane.views
            ),
            "the finished reply",
        )
        assert app.is_running
        stored = (await engine.list_messages(thread.id)).items[-1]
        assert stored.content == corpus
        await pilot.press("shift+tab", "shift+tab")
        app.chat.threads.select(drafts.id)
        await pilot.press("enter")
        await shown(pilot, drafts.id)
        assert app.chat.composer.text == "half-typed [b prompt"


async def test_keys_in_error_text_are_masked_on_screen(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """T42 (display): a provider error that echoes a key shows only its prefix."""
    thread = await engine.create_thread(title="auth")
    llm.enqueue(
        error=ModelError(
            "401: bad key sk-proj-ABCDEFGHIJKLMNOPQRST and tnx_abcd_SECRETSECRET"
        )
    )
    async for _ in engine.send_message(thread.id, "q"):
        pass
    async with make_app(engine).run_test(size=(120, 30)) as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        text = _screen_text(app)
        assert "ABCDEFGHIJKLMNOPQRST" not in text and "SECRETSECRET" not in text
        assert "sk-proj-****" in text and "tnx_abcd_****" in text


def test_a_renderer_failure_falls_back_to_plain_text_with_a_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """T30: if the Markdown renderer raises, the text is still shown, with a notice."""
    import rich.markdown

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(rich.markdown.Markdown, "__rich_console__", explode)
    console = Console(width=60, file=io.StringIO(), legacy_windows=False)
    markdown = SafeMarkdown("# [/INST] title\n\nbody text")
    with console.capture() as captured:
        console.print(markdown)
    output = captured.get()
    assert markdown.failed
    assert "# [/INST] title" in output and "body text" in output
    assert "shown as plain text" in output
