"""The attachment loader: files become text for the model, under caps, or a clear error.

It sits beside `core` rather than inside `engine` because every front end needs it on
its own side of the `ChatBackend`: the app's composer and `tenex-tui send --attach`
load files before a message goes to a local or a remote backend, and the engine's
`knowledge add` loads documents. It imports only `tenex_tui.core` (an import-linter
contract checks it).

The public names are loaded on first use (PEP 562): the parser child process
(`python -m tenex_tui.attachments.worker`) imports this package too, and must not pay
for pydantic before it reads a byte.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenex_tui.attachments.limits import (
        AttachmentLimits as AttachmentLimits,
    )
    from tenex_tui.attachments.limits import format_limit as format_limit
    from tenex_tui.attachments.limits import format_size as format_size
    from tenex_tui.attachments.loader import (
        AttachmentsRefused as AttachmentsRefused,
    )
    from tenex_tui.attachments.loader import (
        LoadedAttachment as LoadedAttachment,
    )
    from tenex_tui.attachments.loader import load_attachment as load_attachment
    from tenex_tui.attachments.loader import load_attachments as load_attachments
    from tenex_tui.attachments.loader import (
        load_attachments_async as load_attachments_async,
    )
    from tenex_tui.attachments.snapshot import display_name as display_name

_EXPORTS = {
    "AttachmentLimits": "tenex_tui.attachments.limits",
    "format_limit": "tenex_tui.attachments.limits",
    "format_size": "tenex_tui.attachments.limits",
    "AttachmentsRefused": "tenex_tui.attachments.loader",
    "LoadedAttachment": "tenex_tui.attachments.loader",
    "display_name": "tenex_tui.attachments.snapshot",
    "load_attachment": "tenex_tui.attachments.loader",
    "load_attachments": "tenex_tui.attachments.loader",
    "load_attachments_async": "tenex_tui.attachments.loader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
