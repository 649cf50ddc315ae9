"""Stripe connect (restricted key or Connect OAuth) / disconnect routes (the Stripe issue)."""

from flask import Blueprint

bp = Blueprint("stripe_connection", __name__)
