"""Helpers that start real processes and protocol-faithful doubles for tests."""
