"""The protocol v4 wire layer: frames, schemas, scopes, handshake, dispatch, WebSocket shim."""
