"""tenex-tui: a keyboard-driven terminal client for 10ex chat threads."""

__version__ = "0.1.0"
