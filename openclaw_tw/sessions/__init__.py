"""Sessions: key grammar, the durable session and transcript store."""
