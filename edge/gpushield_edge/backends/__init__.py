"""Adapters that turn an admitted call into a backend job and its result."""
