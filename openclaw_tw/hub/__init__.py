"""The hub: connected sockets, broadcast, presence, health, the gateway identity."""
