"""QuickBooks's pages and endpoints in the web app (see ``setup.py``)."""
