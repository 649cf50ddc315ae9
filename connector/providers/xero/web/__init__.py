"""Xero's pages and endpoints in the web app: connect (with the organisation picker), the
sales-account setting, disconnect (``connect.py``), and the status webhook (``receiver.py``).
``setup.py`` plugs them in; the app calls it through the provider registry."""
