"""The inbound receiver contract."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)
