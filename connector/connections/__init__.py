"""Connections to outside accounts: the encrypted credential store and each provider's connect flow.

``store.py`` keeps credentials encrypted per workspace; ``quickbooks.py`` and ``stripe.py`` hold the
admin-facing connect / callback / disconnect routes of their provider.
"""
