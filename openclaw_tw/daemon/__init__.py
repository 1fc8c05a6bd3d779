"""Process plumbing: service tree order, listeners, TLS, log file, systemd, mDNS."""
