"""Settings: `config.toml` plus environment variables, validated with pydantic.

Nothing is read at import; `load_settings()` (arriving with the CLI) does the reading.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UiSettings(BaseModel):
    """The `[ui]` table: what the terminal app needs from the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: str = "textual-dark"
    """A Textual theme name."""
    show_sidebar: bool = True
    """Whether the thread sidebar is shown at start (it can be toggled)."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Binding id → key(s), such as `{"thread.new": "ctrl+t"}`, applied with set_keymap."""
