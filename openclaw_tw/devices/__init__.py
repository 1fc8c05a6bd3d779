"""Device identity: Ed25519 proofs, the device store, pairing policy and device tokens."""
