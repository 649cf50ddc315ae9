"""Connections to outside accounts: the encrypted, per-workspace credential store (``store.py``).

Each provider's connect pages live in its own folder (``connector/providers/<name>/web/``).
"""
