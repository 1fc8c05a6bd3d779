"""Channel framework: DM access policy, DM pairing and the channel status surface."""
