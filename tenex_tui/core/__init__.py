"""The contract: API models, stream events, the `ChatBackend` protocol, errors, and the
sanitiser for untrusted text. It imports nothing else from the package (DESIGN.md §2)."""
