"""Observability: the Prometheus metrics of one gateway (``metrics.py``)."""
