"""Who may connect: peer addresses behind proxies, the auth rate limiter."""
