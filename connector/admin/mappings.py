"""Mapping pages of the admin console: customers for tracker clients/projects, and rates.

Every change is committed first and then ``service.after_change`` asks the pipeline to re-bill
held approvals, so a draft appears as soon as its mapping or rate exists.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from connector import books, db
from connector.admin import onboarding
from connector.admin.confirm import confirm_page, confirmed
from connector.auth import admin_required, workspace_for_admin
from connector.models import TrackerEntity, Workspace
from connector.providers import DISPLAY_NAMES, build_provider
from connector.providers.base import (
    AccountingCustomer,
    AccountingProvider,
    DuplicateCustomer,
    NewCustomer,
    ProviderError,
    ReconnectNeeded,
)
from connector.security import bounded_int_arg
from connector.settings import GROUPINGS
from connector.validation import CUSTOMER_NAME_MAX, email_address, iso_currency
from mappings import customer_settings as overrides
from mappings import service
from mappings.suggest import rank_customers

bp = Blueprint("mappings", __name__)


def _provider(ws: Workspace) -> AccountingProvider:
    return build_provider(ws.id, ws.provider, current_app.config)


def _provider_problem(ws: Workspace, exc: ProviderError) -> str:
    name = DISPLAY_NAMES.get(ws.provider, ws.provider)
    if onboarding.accounting_state(ws) == onboarding.AccountingState.NOT_CONNECTED:
        # Never connected: "reconnect" would be wrong, and nothing can be mapped until it is.
        return onboarding.connect_first_message(ws)
    if isinstance(exc, ReconnectNeeded):
        return f"{name} needs to be reconnected before its customers can be listed ({exc})."
    return f"{name} did not answer as expected: {exc}"


def _customers(ws: Workspace, provider: AccountingProvider) -> list[AccountingCustomer]:
    key = service.customer_cache_key(db.session, ws.id, ws.provider)
    return service.fetch_customers(provider, cache_key=key)


def _load_customers(ws: Workspace) -> tuple[list[AccountingCustomer], str | None]:
    if onboarding.accounting_state(ws) == onboarding.AccountingState.NOT_CONNECTED:
        return [], onboarding.connect_first_message(ws)
    try:
        return _customers(ws, _provider(ws)), None
    except ProviderError as exc:
        return [], _provider_problem(ws, exc)


def changed(
    ws: Workspace,
    message: str,
    *,
    customer_id: str | None = None,
    tracker: tuple[str, str] | None = None,
    notice: bool = True,
) -> None:
    """Commit, then release holds; the flash says how many approvals are being re-billed, and
    that drafts already created (for this customer / client / project) stay as they are."""
    db.session.commit()
    # Counted before the holds are re-billed: the drafts that existed before this change.
    said = (
        service.change_notice(ws.id, customer_id=customer_id, tracker=tracker)["notice"]
        if notice
        else None
    )
    released = service.after_change(ws.id)
    if released:
        message += f" Re-billing {released} held approval(s)."
    if said:
        message += f" {said}"
    flash(message, "success")


def _safeback_to(ws: Workspace, target: str | None) -> str | None:
    """A page of this workspace to return to after a fix; never an open redirect."""
    target = target or ""
    if target.startswith(f"/workspaces/{ws.id}/") and "//" not in target and "\\" not in target:
        return target
    return None


def back_to(ws: Workspace, default: str | None = None) -> str:
    """Where a saved fix returns: the approval it came from (``back``), else ``default``."""
    return (
        _safeback_to(ws, request.form.get("back"))
        or default
        or url_for("mappings.index", workspace_id=ws.id)
    )


def back_arg(ws: Workspace) -> str | None:
    """The ``back`` a fix page was opened with (from a hold's button), carried in its forms."""
    return _safeback_to(ws, request.args.get("back") or request.form.get("back"))


def _label(ws: Workspace, kind: str, tracker_id: str) -> str:
    """The tracker's name for a client/project (its id only when never seen in an approval)."""
    name = db.session.scalar(
        select(TrackerEntity.name).where(
            TrackerEntity.workspace_id == ws.id,
            TrackerEntity.kind == kind,
            TrackerEntity.tracker_id == tracker_id,
        )
    )
    return name or tracker_id


def _kind_and_id() -> tuple[str, str]:
    kind = request.form.get("kind", "")
    tracker_id = (request.form.get("tracker_id") or "").strip()
    if kind not in service.KINDS or not tracker_id:
        abort(400)
    return kind, tracker_id


# --- the mapping screen --------------------------------------------------------------------------
PAGE_SIZE = 50
SEARCH_MAX = 200  # characters of a search kept: longer ones are no name anyone has


@bp.route("/workspaces/<int:workspace_id>/mappings")
@admin_required
def index(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    query = (request.args.get("q") or "").strip()[:SEARCH_MAX]
    show = request.args.get("show", "")
    if show not in ("", "unmapped"):
        show = ""
    rows = service.list_entities(db.session, ws.id)
    billable = onboarding.billable_subjects(ws.id)
    for row in rows:
        # Only-ever-non-billable projects (and clients) never need a customer: no nagging.
        row.billable = (row.kind, row.tracker_id) in billable or row.mapping is not None
    unmapped_total = sum(1 for r in rows if r.billable and r.effective is None)
    if query:
        needle = query.casefold()
        rows = [
            r
            for r in rows
            if needle in r.name.casefold()
            or needle in r.tracker_id.casefold()
            or needle in (r.email or "").casefold()
            or (r.effective is not None and needle in r.effective.customer_name.casefold())
        ]
    if show == "unmapped":
        rows = [r for r in rows if r.billable and r.effective is None]
    total = len(rows)
    pages = max(1, -(-total // PAGE_SIZE))
    page = bounded_int_arg(request.args.get("page"), 1, high=pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    customers, problem = _load_customers(ws)
    # Ranked over every accounting customer, for the rows on this page only.
    service.add_suggestions([r for r in shown if r.billable], customers)

    def page_url(number: int) -> str:
        args = {"q": query, "show": show, "page": number if number > 1 else None}
        return url_for("mappings.index", workspace_id=ws.id, **{k: v for k, v in args.items() if v})

    history = service.history(db.session, ws.id)
    books_key = service.current_books(db.session, ws.id)
    return render_template(
        "mappings/index.html",
        workspace=ws,
        history=history,
        books_name=books.describe_key(db.session, ws.id, books_key)
        if books_key
        else DISPLAY_NAMES.get(ws.provider, ws.provider),
        remap_count=sum(1 for r in rows if r.previous is not None and r.effective is None),
        clients=[r for r in shown if r.kind == "client"],
        projects=[r for r in shown if r.kind == "project"],
        confident=sum(1 for r in shown if r.confident),
        problem=problem,
        provider_name=DISPLAY_NAMES.get(ws.provider, ws.provider),
        customers=overrides.list_customers(db.session, ws.id),
        query=query,
        show=show,
        total=total,
        unmapped_total=unmapped_total,
        page=page,
        pages=pages,
        page_url=page_url,
    )


@bp.route("/workspaces/<int:workspace_id>/mappings", methods=["POST"])
@admin_required
def save(workspace_id: int) -> Any:
    """Map one client/project to an existing customer (one-click accept or a chosen one)."""
    ws = workspace_for_admin(workspace_id)
    kind, tracker_id = _kind_and_id()
    if onboarding.accounting_state(ws) == onboarding.AccountingState.NOT_CONNECTED:
        flash(onboarding.connect_first_message(ws), "error")
        return redirect(url_for("admin.connections", workspace_id=ws.id))
    try:
        row = service.link_customer(
            db.session,
            ws.id,
            _provider(ws),
            kind=kind,
            tracker_id=tracker_id,
            customer_id=request.form.get("customer_id", ""),
        )
    except service.MappingError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.field.replace('_', ' ')} {exc.message}.", "error")
        return redirect(back_to(ws))
    except ProviderError as exc:
        db.session.rollback()
        flash(_provider_problem(ws, exc), "error")
        return redirect(back_to(ws))
    changed(
        ws,
        f"{kind.capitalize()} {_label(ws, kind, tracker_id)} is now billed to {row.customer_name}.",
        tracker=(kind, tracker_id),
    )
    return redirect(back_to(ws))


def _billable_rows_and_customers(
    ws: Workspace,
) -> tuple[list[service.EntityRow], list[AccountingCustomer] | None]:
    """The clients/projects with billable time, and the books' customers (None, said in a
    flash, when the accounting system cannot list them)."""
    billable = onboarding.billable_subjects(ws.id)
    rows = [
        r for r in service.list_entities(db.session, ws.id) if (r.kind, r.tracker_id) in billable
    ]
    customers, problem = _load_customers(ws)
    if problem:
        flash(problem, "error")
        return rows, None
    return rows, customers


@bp.route("/workspaces/<int:workspace_id>/mappings/accept-confident", methods=["POST"])
@admin_required
def accept_confident(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    rows, customers = _billable_rows_and_customers(ws)
    if customers is None:
        return redirect(url_for("mappings.index", workspace_id=ws.id))
    service.add_suggestions(rows, customers)
    count = service.accept_confident(db.session, ws.id, rows)
    if count:
        # Only unmapped clients/projects were mapped: no created draft bills their hours.
        changed(ws, f"Accepted {count} confident suggestion(s).", notice=False)
    else:
        flash("No confident suggestions to accept; pick customers one by one.", "error")
    return redirect(url_for("mappings.index", workspace_id=ws.id))


@bp.route("/workspaces/<int:workspace_id>/mappings/map-exact-matches", methods=["POST"])
@admin_required
def map_exact_matches(workspace_id: int) -> Any:
    """After a switch of books (or any time): every exact match mapped in one step."""
    ws = workspace_for_admin(workspace_id)
    rows, customers = _billable_rows_and_customers(ws)
    if customers is None:
        return redirect(url_for("mappings.index", workspace_id=ws.id))
    mapped = service.map_exact_matches(db.session, ws.id, rows, customers)
    if mapped:
        names = ", ".join(f"{row.name} -> {customer.name}" for row, customer in mapped[:5])
        more = f" and {len(mapped) - 5} more" if len(mapped) > 5 else ""
        changed(ws, f"Mapped {len(mapped)} exact match(es): {names}{more}.", notice=False)
    else:
        flash("No exact matches: pick customers one by one (suggestions are ranked).", "error")
    return redirect(url_for("mappings.index", workspace_id=ws.id))


def _entity_row(ws: Workspace, kind: str, tracker_id: str) -> service.EntityRow:
    for row in service.list_entities(db.session, ws.id):
        if row.kind == kind and row.tracker_id == tracker_id:
            return row
    # Not seen in an approval yet (e.g. a link from a hold): still mappable by id.
    return service.EntityRow(kind=kind, tracker_id=tracker_id, name=tracker_id)


def _render_edit(
    ws: Workspace,
    kind: str,
    tracker_id: str,
    *,
    duplicate: Any = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Any:
    row = _entity_row(ws, kind, tracker_id)
    query = (request.args.get("q") or "").strip()[:SEARCH_MAX]  # as the list's search
    problem = None
    results: list[AccountingCustomer] = []
    not_connected = onboarding.accounting_state(ws) == onboarding.AccountingState.NOT_CONNECTED
    try:
        if not_connected:
            problem = onboarding.connect_first_message(ws)
        elif query:
            results = list(_provider(ws).list_customers(query=query, limit=25).customers)
        else:
            row.suggestions = rank_customers(
                row.name, row.email, _customers(ws, _provider(ws)), limit=8
            )
    except ProviderError as exc:
        problem = _provider_problem(ws, exc)
    client = None
    if row.kind == "project" and row.client_id:
        client = _entity_row(ws, "client", row.client_id)
    page = render_template(
        "mappings/edit.html",
        workspace=ws,
        row=row,
        client=client,
        query=query,
        results=results,
        problem=problem,
        duplicate=duplicate,
        not_connected=not_connected,
        errors=errors or {},
        provider_name=DISPLAY_NAMES.get(ws.provider, ws.provider),
        # The currency its approved rows are priced in, else the workspace's default.
        default_currency=service.billing_currency(db.session, ws.id, kind, tracker_id),
        back=back_arg(ws),
    )
    return page, status


@bp.route("/workspaces/<int:workspace_id>/mappings/<kind>/<path:tracker_id>")
@admin_required
def edit(workspace_id: int, kind: str, tracker_id: str) -> Any:
    ws = workspace_for_admin(workspace_id)
    if kind not in service.KINDS:
        abort(404)
    return _render_edit(ws, kind, tracker_id)


@bp.route("/workspaces/<int:workspace_id>/mappings/create-customer", methods=["POST"])
@admin_required
def create_customer(workspace_id: int) -> Any:
    """Create the customer in the accounting system and map to it in one step."""
    ws = workspace_for_admin(workspace_id)
    kind, tracker_id = _kind_and_id()
    if onboarding.accounting_state(ws) == onboarding.AccountingState.NOT_CONNECTED:
        flash(onboarding.connect_first_message(ws), "error")
        return _render_edit(ws, kind, tracker_id, status=409)
    name = (request.form.get("name") or "").strip()
    email = (request.form.get("email") or "").strip() or None
    # Left empty: the currency its approved rows are priced in, else the workspace's default.
    currency = (request.form.get("currency") or "").strip().upper() or service.billing_currency(
        db.session, ws.id, kind, tracker_id
    )
    errors: dict[str, str] = {}  # every field's problem at once
    if not name:
        errors["name"] = "The customer needs a name."
    elif len(name) > CUSTOMER_NAME_MAX:
        errors["name"] = f"Use at most {CUSTOMER_NAME_MAX} characters."
    if email is not None:
        try:
            email = email_address(email)
        except ValueError as exc:
            errors["email"] = f"The billing email {exc}."
    if currency is not None:
        try:
            currency = iso_currency(currency)
        except ValueError as exc:
            errors["currency"] = f"{str(exc)[0].upper()}{str(exc)[1:]}."
    if errors:
        flash(f"Not created: {len(errors)} field(s) need a change; each is marked below.", "error")
        return _render_edit(ws, kind, tracker_id, status=422, errors=errors)
    try:
        customer = _provider(ws).create_customer(
            NewCustomer(name=name, email=email, currency=currency, tracker_id=tracker_id)
        )
    except DuplicateCustomer as exc:
        # The accounting system already has it: offer to link that one instead of failing.
        flash(f"{name} already exists in {DISPLAY_NAMES.get(ws.provider)}: {exc.message}", "error")
        return _render_edit(ws, kind, tracker_id, duplicate=exc.existing, status=409)
    except ProviderError as exc:
        flash(_provider_problem(ws, exc), "error")
        return _render_edit(ws, kind, tracker_id, status=502)
    service.forget_customers(ws.id)  # the cached list lacks the new customer
    service.map_to(
        db.session, ws.id, kind=kind, tracker_id=tracker_id, customer=customer, currency=currency
    )
    changed(
        ws,
        f"Created {customer.name} and billed {kind} {_label(ws, kind, tracker_id)} to it.",
        tracker=(kind, tracker_id),
    )
    return redirect(back_to(ws))


@bp.route("/workspaces/<int:workspace_id>/mappings/remove", methods=["POST"])
@admin_required
def remove(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    kind, tracker_id = _kind_and_id()
    label = _label(ws, kind, tracker_id)
    mapping = service.get_mapping(db.session, ws.id, kind, tracker_id)
    if mapping is None:
        flash("That mapping was already gone.", "error")
        return redirect(url_for("mappings.index", workspace_id=ws.id))
    if not confirmed():
        made = service.drafts_made_with(db.session, ws.id, mapping)
        return confirm_page(
            workspace=ws,
            title=f"Remove the mapping of {kind} {label} to {mapping.customer_name}?",
            consequences=[
                (
                    f"{made} draft(s) were created with this mapping; they stay as they are."
                    if made
                    else "No draft was created with this mapping yet."
                ),
                f"Future approvals with time on {kind} {label} are held as "
                "“needs a customer” until it is mapped again"
                + (
                    " (a project still follows its client's mapping)." if kind == "project" else "."
                ),
                f"{mapping.customer_name} itself is not changed in the accounting system.",
            ],
            action=url_for("mappings.remove", workspace_id=ws.id),
            button="Remove the mapping",
            cancel_url=url_for("mappings.index", workspace_id=ws.id),
            fields={"kind": kind, "tracker_id": tracker_id},
        )
    service.remove_mapping(db.session, ws.id, kind, tracker_id)
    # The notice says how many drafts were made with it and that they stay as they are.
    changed(ws, f"Removed the mapping of {kind} {label}.", tracker=(kind, tracker_id))
    return redirect(url_for("mappings.index", workspace_id=ws.id))


# --- per-customer settings ----------------------------------------------------------------------
@bp.route(
    "/workspaces/<int:workspace_id>/customers/<path:customer_id>/settings",
    methods=["GET", "POST"],
)
@admin_required
def customer_settings(workspace_id: int, customer_id: str) -> Any:
    """One customer's overrides of the workspace settings; empty fields = workspace default."""
    ws = workspace_for_admin(workspace_id)

    def lookup(wanted: str) -> AccountingCustomer | None:
        # Settable before any mapping: for a customer the books confirm.
        try:
            return _provider(ws).get_customer(wanted)
        except ProviderError:
            return None

    view = overrides.get(db.session, ws.id, customer_id, lookup)
    if view is None:
        abort(404)
    stored = view.overrides.to_dict()
    form = {name: "" if value is None else str(value) for name, value in stored.items()}
    errors: dict[str, str] = {}
    if request.method == "POST":
        here = url_for("mappings.customer_settings", workspace_id=ws.id, customer_id=customer_id)
        if request.form.get("action") == "clear":
            if overrides.clear(db.session, ws.id, customer_id):
                changed(
                    ws,
                    f"{view.customer_name} now uses the workspace settings.",
                    customer_id=view.customer_id,
                )
            else:
                flash(f"{view.customer_name} already uses the workspace settings.", "success")
            return redirect(here)
        form = {name: request.form.get(name, "") for name in overrides.FIELDS}
        try:
            overrides.set_overrides(db.session, ws.id, customer_id, form, lookup)
        except overrides.CustomerSettingsError as exc:
            db.session.rollback()
            # Every field's problem at once: each field checked on its own.
            for name in overrides.FIELDS:
                try:
                    overrides.validate_overrides({name: form.get(name, "")})
                except overrides.CustomerSettingsError as field_exc:
                    errors[field_exc.field] = field_exc.message
            errors = errors or {exc.field: exc.message}
        else:
            changed(ws, f"Settings for {view.customer_name} saved.", customer_id=view.customer_id)
            return redirect(here)
    page = render_template(
        "mappings/customer_settings.html",
        workspace=ws,
        customer=view,
        defaults=view.workspace,
        form=form,
        errors=errors,
        groupings=GROUPINGS,
    )
    return (page, 422) if errors else page


# The rates pages live in rate_pages.py on this same blueprint ("mappings.rates").
from connector.admin import rate_pages  # noqa: E402, F401 - registers its routes on bp
