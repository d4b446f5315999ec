"""Backend adapter tests."""
