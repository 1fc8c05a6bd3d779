"""RPC method families; each module exposes ``register(table, gateway)``."""
