"""Test support: helpers, fakes and process harnesses shared by every tier (never a test)."""
