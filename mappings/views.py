"""Mapping pages of the admin console (the admin console issue)."""

from flask import Blueprint

bp = Blueprint("mappings", __name__)
