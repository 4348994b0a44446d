"""The local chat engine: SQLite store, migrations, LLM adapter, tools (no UI imports)."""
