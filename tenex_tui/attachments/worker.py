"""The parser child process, and the parent's side of it.

PDF, DOCX and HTML parsing runs in `python -m tenex_tui.attachments.worker KIND` so that a
hostile file costs a bounded amount: the child sets `RLIMIT_AS` (memory) and
`RLIMIT_CPU` on itself before it imports a parser, and the parent kills it when the
wall-clock timeout passes (test-plan T51, H7). pypdf's own caps and the zip checks stay
in front; this is the backstop for what they do not cover (a parser that loops, a
quadratic case in the stdlib HTML parser, a 10 MB text node in lxml).

Protocol: the parent writes the file's bytes (the attach-time snapshot, never the path:
T54) to the child's stdin and passes the limits as JSON in `--config`; the child writes
one JSON object to stdout:
`{"ok": true, "text", "total_chars", "hidden", "warnings", "note"}` or
`{"ok": false, "code", "reason"}`. `reason` completes a sentence that starts with the
file's name, which only the parent knows.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tenex_tui.attachments.limits import AttachmentLimits, format_limit
from tenex_tui.core.errors import AttachmentError

ParserKind = Literal["pdf", "docx", "html"]
"""What the child is asked to read."""

WORKER_MODULE = "tenex_tui.attachments.worker"

# The child stops starting new pages after this share of the timeout, so a long document
# returns its first pages (marked as cut) before the parent's hard kill.
_SOFT_DEADLINE_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class ParserResult:
    """Text a child extracted, cut to the per-file cap."""

    text: str
    total_chars: int | None
    """All characters extracted; None when the child stopped early."""
    hidden: int = 0
    """Hidden (tag) characters removed."""
    warnings: tuple[str, ...] = ()
    """Phrases that follow the file's name."""
    note: str | None = None
    """When the child stopped early: what it read ("pages 1–57 of 2,000 were read")."""


@dataclass(frozen=True, slots=True)
class _Config:
    text_cap: int
    soft_seconds: float
    memory_bytes: int
    cpu_seconds: int
    zip_max_unpacked_bytes: int
    zip_max_entries: int
    zip_max_ratio: int
    zip_max_directory_bytes: int


def _config_for(limits: AttachmentLimits) -> _Config:
    return _Config(
        text_cap=limits.max_file_chars,
        soft_seconds=limits.parser_timeout * _SOFT_DEADLINE_SHARE,
        memory_bytes=limits.parser_memory_bytes,
        # A second guard on CPU in case the parent dies and never kills the child.
        cpu_seconds=math.ceil(limits.parser_timeout) + 1,
        zip_max_unpacked_bytes=limits.zip_max_unpacked_bytes,
        zip_max_entries=limits.zip_max_entries,
        zip_max_ratio=limits.zip_max_ratio,
        zip_max_directory_bytes=limits.zip_max_directory_bytes,
    )


# What the child keeps of the parent's environment. Everything else stays behind, API
# keys above all: the child parses hostile files, so it gets nothing worth stealing.
_CHILD_ENV_KEEP = (
    "PATH",
    "PYTHONHOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
)


def _child_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in _CHILD_ENV_KEEP if key in os.environ}
    # The child must import this same package even when it is not installed (a source
    # checkout run from another directory), so its folder goes first on PYTHONPATH.
    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not existing else os.pathsep.join((root, existing))
    return env


def run_parser(
    kind: ParserKind,
    payload: bytes,
    *,
    name: str,
    limits: AttachmentLimits,
    module: str = WORKER_MODULE,
) -> ParserResult:
    """Parse a document in a child process under the memory and time limits.

    Blocking: call it from a thread (the loader's callers do).

    Args:
        kind: The reader to use.
        payload: The document's bytes (HTML: already decoded, as UTF-8).
        name: The display name, for error sentences.
        limits: `parser_timeout`, `parser_memory_bytes`, `max_file_chars` and the zip
            limits apply.
        module: The module run with `python -m` (tests swap in a misbehaving one).

    Returns:
        The extracted text, cut to `limits.max_file_chars`.

    Raises:
        AttachmentError: The document is refused, damaged, took too long (the child
            was killed), or needed too much memory; one sentence naming the file.
    """
    config = json.dumps(asdict(_config_for(limits)))
    command = [sys.executable, "-m", module, kind, "--config", config]
    timeout = limits.parser_timeout
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
            # Its own session: a Ctrl+C meant for the app does not reach the child.
            start_new_session=True,
        )
    except OSError as exc:
        raise AttachmentError(
            f"{name} could not be read (the reader could not start: {exc.strerror})"
        ) from exc
    try:
        out, _ = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise AttachmentError(
            f"{name} took too long to read (over {timeout:g} s)"
        ) from None
    finally:
        if proc.poll() is None:  # an exception other than the timeout
            _kill(proc)
            proc.wait()
    return _decode_reply(out, proc.returncode, name=name, limits=limits)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The child leads its own process group: kill the group, so a helper a parser
    # may have started (pypdf can run `jbig2dec` for images) goes with it.
    killpg = getattr(os, "killpg", None)
    if killpg is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(proc.pid, signal.SIGKILL)
            return
    proc.kill()


def _decode_reply(
    out: bytes, returncode: int, *, name: str, limits: AttachmentLimits
) -> ParserResult:
    if returncode == -getattr(signal, "SIGXCPU", 24):
        raise AttachmentError(
            f"{name} took too long to read (over {limits.parser_timeout:g} s)"
        )
    try:
        reply = json.loads(out)
    except (ValueError, UnicodeDecodeError):
        reply = None
    if not isinstance(reply, dict) or returncode != 0:
        raise AttachmentError(
            f"{name} could not be read (the reader stopped unexpectedly)"
        )
    if reply.get("ok") is True:
        text = reply.get("text")
        total = reply.get("total_chars")
        hidden = reply.get("hidden", 0)
        warnings = reply.get("warnings", [])
        note = reply.get("note")
        if (
            isinstance(text, str)
            and (total is None or isinstance(total, int))
            and isinstance(hidden, int)
            and isinstance(warnings, list)
            and all(isinstance(w, str) for w in warnings)
            and (note is None or isinstance(note, str))
        ):
            return ParserResult(text, total, hidden, tuple(warnings), note)
        raise AttachmentError(f"{name} could not be read (the reader answered badly)")
    if reply.get("code") == "memory":
        raise AttachmentError(
            f"{name} needs too much memory to read (over "
            f"{format_limit(limits.parser_memory_bytes)})"
        )
    reason = reply.get("reason")
    if not isinstance(reason, str) or not reason:
        reason = "could not be read"
    raise AttachmentError(f"{name} {reason}")


# --- the child -------------------------------------------------------------------


def apply_limits(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap this process's address space and CPU time (no-op where unsupported).

    The CPU hard limit sits one second above the soft one: SIGXCPU first, then SIGKILL
    if the signal is ignored. A stricter limit inherited from outside is kept.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no rlimits
        return
    for which, value, grace in (
        (resource.RLIMIT_AS, memory_bytes, 0),
        (resource.RLIMIT_CPU, cpu_seconds, 1),
    ):
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
            grace = 0
        # A stricter limit set from outside wins; this one is then moot.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value + grace))


def _quiet() -> None:
    # Parsers log and warn about every oddity of a damaged file; stdout is our protocol
    # channel and stderr goes nowhere, so silence both kinds of chatter.
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")


def _parse(kind: str, data: bytes, config: _Config) -> dict[str, object]:
    from tenex_tui.attachments.documents import (
        Parsed,
        Refused,
        read_docx,
        read_html,
        read_pdf,
    )

    deadline = time.monotonic() + config.soft_seconds
    limits = AttachmentLimits(
        max_file_chars=config.text_cap,
        zip_max_unpacked_bytes=config.zip_max_unpacked_bytes,
        zip_max_entries=config.zip_max_entries,
        zip_max_ratio=config.zip_max_ratio,
        zip_max_directory_bytes=config.zip_max_directory_bytes,
    )
    try:
        parsed: Parsed
        if kind == "pdf":
            parsed = read_pdf(data, cap=config.text_cap, deadline=deadline)
        elif kind == "docx":
            parsed = read_docx(
                data, cap=config.text_cap, deadline=deadline, limits=limits
            )
        elif kind == "html":
            parsed = read_html(data, cap=config.text_cap)
        else:
            return {"ok": False, "code": "usage", "reason": "is of an unknown kind"}
    except Refused as exc:
        return {"ok": False, "code": exc.code, "reason": exc.reason}
    except MemoryError:
        return {"ok": False, "code": "memory", "reason": "needs too much memory"}
    except RecursionError:
        return {
            "ok": False,
            "code": "damaged",
            "reason": "could not be read (its structure nests too deeply)",
        }
    except Exception:
        return {
            "ok": False,
            "code": "damaged",
            "reason": "could not be read (it looks damaged)",
        }
    return {
        "ok": True,
        "text": parsed.text,
        "total_chars": parsed.total_chars,
        "hidden": parsed.hidden,
        "warnings": parsed.warnings,
        "note": parsed.note,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child: parse stdin, answer one JSON object on stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[1] != "--config":
        print("usage: python -m tenex_tui.attachments.worker KIND --config JSON")
        return 2
    kind, raw = args[0], args[2]
    config = _Config(**json.loads(raw))
    apply_limits(config.memory_bytes, config.cpu_seconds)
    _quiet()
    protocol = sys.stdout.buffer
    # Anything a library prints must not corrupt the reply.
    sys.stdout = sys.stderr
    data = sys.stdin.buffer.read()
    reply = _parse(kind, data, config)
    protocol.write(json.dumps(reply, ensure_ascii=False).encode("utf-8"))
    protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
