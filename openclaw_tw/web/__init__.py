"""The twisted.web resource tree sharing the gateway port with the WebSocket control plane."""
