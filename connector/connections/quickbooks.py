"""QuickBooks Online connect / callback / disconnect routes (filled in by the QuickBooks issue)."""

from flask import Blueprint

bp = Blueprint("quickbooks_connection", __name__)
