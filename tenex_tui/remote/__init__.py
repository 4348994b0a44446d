"""`RemoteBackend`: the chat API over HTTP + SSE, with resume, retries and sync."""
