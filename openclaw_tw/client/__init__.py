"""The client program: `openclaw-tw`, its connection, the headless node host."""
