"""The fuzz tier: generated params for every method and malformed frames against the
in-memory gateway (``test_methods``, ``test_frames``), and generated HTTP requests, as exact
bytes, for every HTTP route through its real ``Site`` (``test_http``).

``FUZZ_EXAMPLES`` (per method and role, twice that per HTTP route test; the CI budget by
default) and ``FUZZ_REPORT`` (a JSON-lines file of per-test counts) are set by ``make fuzz``
for a long run.
"""
