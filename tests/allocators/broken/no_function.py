"""Broken on purpose: defines no function at all."""
K = 10
