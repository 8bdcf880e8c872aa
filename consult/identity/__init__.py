"""Becoming verified: a basic account's identity confirmed (PESEL and an identity document)."""
