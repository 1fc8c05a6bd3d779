"""Configuration: resolved settings, the JSON5 document on disk, hot reload."""
