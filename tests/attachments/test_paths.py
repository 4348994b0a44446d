"""T45 and T46: where a path leads, symlinks, special files, and races."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import AttachmentLimits, display_name, load_attachment
from tenex_tui.core.errors import AttachmentError

Write = Callable[[str, bytes | str], Path]


def _refused(path: str | Path, limits: AttachmentLimits | None = None) -> str:
    with pytest.raises(AttachmentError) as caught:
        load_attachment(path, limits=limits)
    return str(caught.value)


# --- T45: traversal and names -------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    ["../../.ssh/id_rsa", "../outside.txt", "sub/../../outside.txt"],
)
def test_paths_that_climb_out_of_the_allowed_root_are_refused(
    tmp_path: Path, relative: str
) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    limits = AttachmentLimits(allowed_roots=(root,))

    message = _refused(root / relative, limits)

    assert "outside the folders attachments may come from" in message


def test_absolute_system_paths_are_refused_outside_the_roots(tmp_path: Path) -> None:
    limits = AttachmentLimits(allowed_roots=(tmp_path,))
    assert "outside the folders" in _refused("/etc/passwd", limits)
    assert _refused("/etc/passwd", limits).startswith("passwd ")


def test_a_tilde_is_not_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "x").write_text("from home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)

    assert _refused("~/x") == "x was not found"


@pytest.mark.parametrize("name", ["..\\..\\x", "%2e%2e/x.txt"])
def test_backslashes_and_percent_escapes_are_literal_names(
    files: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(files)
    target = files / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("literal")
    limits = AttachmentLimits(allowed_roots=(files,))

    loaded = load_attachment(name, limits=limits)

    assert loaded.text == "literal"
    assert "/" not in loaded.name and "\\" not in loaded.name
    assert loaded.name == ("x" if "\\" in name else "x.txt")


def test_a_nul_in_the_path_is_refused() -> None:
    assert "contains a NUL" in _refused("notes\x00.txt")


def test_a_path_over_4_kib_is_refused_before_any_system_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real_lstat = os.lstat
    monkeypatch.setattr(
        os, "lstat", lambda p, *a, **k: calls.append(p) or real_lstat(p)
    )

    message = _refused("a/" * 2100 + "x.txt")

    assert "longer than 4 KB" in message
    assert calls == []


def test_the_display_name_is_the_base_name_only(write: Write) -> None:
    path = write("deep/nested/report.md", "# hi")

    loaded = load_attachment(path)

    assert loaded.name == "report.md"
    assert display_name("a\\b\\c.txt") == "c.txt"
    assert display_name("/") == "attachment"
    assert display_name("evil\x1b]52;c;x.txt") == "evil␛]52;c;x.txt"
    assert len(display_name("n" * 4000)) == 255


def test_files_inside_the_allowed_roots_load(write: Write, files: Path) -> None:
    path = write("notes.txt", "inside")

    loaded = load_attachment(path, limits=AttachmentLimits(allowed_roots=(files,)))

    assert loaded.text == "inside"


# --- T46: symlinks, protected files, special files, races ---------------------------


def test_a_symlink_is_refused_even_to_a_harmless_file(
    write: Write, files: Path
) -> None:
    target = write("real.txt", "real")
    link = files / "link.txt"
    link.symlink_to(target)

    assert _refused(link) == (
        "link.txt is a symbolic link; attach the file it points to instead"
    )


def test_the_database_is_never_opened_however_it_is_reached(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = files / "tenex.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(100))
    link = files / "innocent.txt"
    link.symlink_to(db)
    hard = files / "hardlink.txt"
    os.link(db, hard)
    limits = AttachmentLimits(protected_paths=(db,))
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, *args: int, **kwargs: int) -> int:
        opened.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)

    assert "one of tenex-tui's own files" in _refused(db, limits)
    assert "one of tenex-tui's own files" in _refused(link, limits)
    assert "one of tenex-tui's own files" in _refused(hard, limits)
    assert opened == []


def test_a_named_pipe_is_refused_without_hanging(files: Path) -> None:
    fifo = files / "pipe.txt"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def attempt() -> None:
        try:
            load_attachment(fifo)
        except AttachmentError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=2)

    assert not thread.is_alive()
    assert outcome == ["pipe.txt is a named pipe, not a regular file"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dev/zero", "zero is a device, not a regular file"),
        ("/dev/urandom", "urandom is a device, not a regular file"),
    ],
)
def test_devices_are_refused(path: str, expected: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    assert _refused(path) == expected


def test_a_folder_is_refused(files: Path) -> None:
    (files / "folder.txt").mkdir()
    assert _refused(files / "folder.txt") == "folder.txt is a folder, not a file"


def test_a_socket_is_refused() -> None:
    folder = tempfile.mkdtemp(prefix="tnx", dir="/tmp")
    path = os.path.join(folder, "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        assert _refused(path) == "s.sock is a socket, not a regular file"
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(folder)


def test_a_missing_file_and_an_unreadable_file_give_plain_sentences(
    write: Write, files: Path
) -> None:
    assert _refused(files / "nope.txt") == "nope.txt was not found"
    locked = write("locked.txt", "x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything
            pytest.skip("running as root: file modes are not enforced")
        assert _refused(locked) == "locked.txt could not be read (permission denied)"
    finally:
        locked.chmod(0o600)


def _swap_forever(
    path: Path, variants: list[Callable[[Path], None]], stop: threading.Event
) -> int:
    swaps = 0
    deadline = time.monotonic() + 2.0
    while not stop.is_set() and swaps < 200 and time.monotonic() < deadline:
        variants[swaps % len(variants)](path)
        swaps += 1
    return swaps


def test_a_path_swapped_between_check_and_open_never_leaks_the_target(
    tmp_path: Path,
) -> None:
    """A regular file, a symlink to a secret outside the root and a FIFO take turns
    at one path while it is attached: every load returns the regular content or a
    clear refusal, never the secret, and never hangs."""
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = root / "doc.txt"
    staging = tmp_path / "staging"

    def regular(p: Path) -> None:
        staging.write_text("public")
        os.replace(staging, p)

    def symlink(p: Path) -> None:
        if staging.exists() or staging.is_symlink():
            staging.unlink()
        staging.symlink_to(secret)
        os.replace(staging, p)

    def fifo(p: Path) -> None:
        if staging.exists() or staging.is_symlink():
            staging.unlink()
        os.mkfifo(staging)
        os.replace(staging, p)

    regular(path)
    limits = AttachmentLimits(allowed_roots=(root,))
    stop = threading.Event()
    swaps: list[int] = []
    swapper = threading.Thread(
        target=lambda: swaps.append(
            _swap_forever(path, [regular, symlink, fifo], stop)
        ),
        daemon=True,
    )
    texts: list[str] = []
    refusals: list[str] = []
    swapper.start()
    deadline = time.monotonic() + 2.0
    try:
        while swapper.is_alive() and time.monotonic() < deadline:
            try:
                texts.append(load_attachment(path, limits=limits).text)
            except AttachmentError as exc:
                refusals.append(str(exc))
    finally:
        stop.set()
        swapper.join(timeout=2)

    assert not swapper.is_alive()
    assert texts or refusals
    assert set(texts) <= {"public"}
    assert not any("TOP SECRET" in r for r in refusals)


def test_a_folder_swapped_for_a_symlink_cannot_lead_outside_the_root(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    inside = root / "sub"
    inside.mkdir(parents=True)
    (inside / "doc.txt").write_text("public")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "doc.txt").write_text("TOP SECRET")
    parked = tmp_path / "parked"
    limits = AttachmentLimits(allowed_roots=(root,))
    stop = threading.Event()

    def swap() -> None:
        deadline = time.monotonic() + 2.0
        for turn in range(200):
            if stop.is_set() or time.monotonic() > deadline:
                return
            if turn % 2 == 0:
                os.rename(inside, parked)
                inside.symlink_to(outside)
            else:
                inside.unlink()
                os.rename(parked, inside)

    swapper = threading.Thread(target=swap, daemon=True)
    texts: list[str] = []
    swapper.start()
    deadline = time.monotonic() + 2.0
    try:
        while swapper.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(AttachmentError):
                texts.append(load_attachment(inside / "doc.txt", limits=limits).text)
    finally:
        stop.set()
        swapper.join(timeout=2)

    assert "TOP SECRET" not in texts
