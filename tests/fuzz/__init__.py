"""The fuzz tier: generated params for every method against the in-memory gateway.

``FUZZ_EXAMPLES`` (per method and role; the CI budget by default) and ``FUZZ_REPORT`` (a
JSON-lines file of per-test counts) are set by ``make fuzz`` for a long run.
"""
