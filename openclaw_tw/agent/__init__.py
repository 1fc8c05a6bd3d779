"""The agent runtime: model providers, runs, streaming, idempotency."""
