"""The admin console: server-rendered pages for workspace admins."""

from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="templates")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str:
    return "Sign-in page: see the admin console issue."
