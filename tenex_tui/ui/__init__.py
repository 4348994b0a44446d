"""The Textual app. It talks only to a `ChatBackend` (DESIGN.md §2)."""
