"""`python -m tenex_tui` runs the same entry point as the `tenex-tui` command."""

from tenex_tui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
