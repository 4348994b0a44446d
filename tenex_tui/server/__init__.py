"""The HTTP API (`/api/v1/chat`) and the MCP server over any `ChatBackend`."""
