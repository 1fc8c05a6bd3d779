"""Benchmark harness: ours vs the real OpenClaw gateway (`python -m bench`)."""
