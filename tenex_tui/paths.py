"""Where tenex-tui keeps its files.

`config.toml` lives in the platformdirs config dir and the database in the data dir,
unless `TENEX_HOME` (or `--home`) points both at one folder, which is what tests and
portable installs use. Nothing here touches the disk until `ensure()` is called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "tenex-tui"


@dataclass(frozen=True)
class Paths:
    """The folders and files of one installation."""

    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        """`config.toml`."""
        return self.config_dir / "config.toml"

    @property
    def database(self) -> Path:
        """The SQLite database of the local engine."""
        return self.data_dir / "tenex.db"

    @property
    def agents_dir(self) -> Path:
        """User-defined agents, one TOML file each."""
        return self.config_dir / "agents"

    @property
    def locks_dir(self) -> Path:
        """Per-process writer locks (used to tell live replies from interrupted ones)."""
        return self.data_dir / "locks"

    @property
    def keys_file(self) -> Path:
        """The 0600 file fallback for secrets when no keyring is available."""
        return self.config_dir / "credentials.toml"

    @property
    def own_files(self) -> tuple[Path, ...]:
        """Files that are never read as attachments: the database with its journal
        files (a second descriptor of an open SQLite file, once closed, drops the
        process's locks on it) and the secrets file."""
        db = self.database
        return (
            db,
            db.with_name(db.name + "-wal"),
            db.with_name(db.name + "-shm"),
            db.with_name(db.name + "-journal"),
            self.keys_file,
        )

    def ensure(self) -> None:
        """Create the folders (mode 0700: they hold chats and keys)."""
        for folder in (self.config_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def resolve_paths(
    home: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Paths:
    """Work out the folders from `--home`, then `TENEX_HOME`, then platformdirs.

    Args:
        home: The `--home` option, if given.
        environ: The environment to read (defaults to `os.environ`).

    Returns:
        The paths; nothing is created.
    """
    env = os.environ if environ is None else environ
    chosen = home if home is not None else env.get("TENEX_HOME")
    if chosen:
        root = Path(chosen).expanduser().absolute()
        return Paths(config_dir=root, data_dir=root)
    # platformdirs is imported here, not at module level, so `import tenex_tui.paths`
    # stays free of work.
    import platformdirs

    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
    )
