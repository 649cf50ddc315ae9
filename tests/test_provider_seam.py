"""The provider seam: a provider is its folder plus one registry line.

Nothing outside a provider's own folder names it (the registry line excepted), so adding one
never means editing templates, receivers, the inbox, configuration or the app's wiring; and what a
provider can do is declared, so optional abilities are checked, not found out by an exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.providers import PROVIDERS, capabilities
from connector.providers.base import AccountingProvider

ROOT = Path(__file__).resolve().parent.parent
CODE = ("connector", "webhooks", "mappings")
SUFFIXES = {".py", ".html", ".js", ".css", ".json"}
REGISTRY = ROOT / "connector" / "providers" / "__init__.py"
# Providers that already live in a folder of their own (the others are still being moved).
FOLDERS = {"xero": ROOT / "connector" / "providers" / "xero"}


def _files_outside(folder: Path) -> list[Path]:
    return [
        path
        for top in CODE
        for path in (ROOT / top).rglob("*")
        if path.suffix in SUFFIXES
        and path.is_file()
        and folder not in path.parents
        and path != REGISTRY
        and "__pycache__" not in path.parts
    ]


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_nothing_outside_a_providers_folder_names_it(name: str):
    word = re.compile(rf"\b{name}\b", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _files_outside(FOLDERS[name])
        for n, line in enumerate(path.read_text(errors="ignore").splitlines(), 1)
        if word.search(line)
    ]
    assert offenders == []


def test_the_registry_line_is_all_a_folder_provider_needs():
    info = PROVIDERS["xero"]
    assert info.module == "connector.providers.xero.provider"
    assert info.web and info.card_template and info.settings and info.signature_header


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_declared_abilities_match_what_the_provider_implements(name: str):
    import importlib

    module = importlib.import_module(PROVIDERS[name].module)
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, AccountingProvider)
    ]
    cls = next(c for c in classes if c is not AccountingProvider and c.name == name)
    declared = capabilities(name)
    overrides = {
        method: getattr(cls, method) is not getattr(AccountingProvider, method)
        for method in ("append_lines", "remove_lines", "fetch_invoice_states")
    }
    assert declared.append_lines == overrides["append_lines"]
    assert declared.remove_lines == overrides["remove_lines"]
    if declared.status_events:
        assert overrides["fetch_invoice_states"]


def test_a_provider_without_line_edits_bills_per_timesheet(monkeypatch, app, workspace):
    from connector import db
    from connector.models import Workspace
    from connector.pipeline.invoices import consolidation_of
    from connector.providers import Capabilities, ProviderInfo

    info = PROVIDERS["local"]
    monkeypatch.setitem(
        PROVIDERS,
        "local",
        ProviderInfo(info.key, info.display_name, info.module, False, Capabilities()),
    )
    with db.session_scope() as s:
        ws = s.get(Workspace, workspace.id)
        ws.settings = {**(ws.settings or {}), "consolidation": "per_period"}
    with db.new_session() as s:
        mode, _period, _start = consolidation_of(s, s.get(Workspace, workspace.id), None, None)
    assert mode == "per_timesheet"


# Where adding a provider used to mean an edit (issue 23): the app's wiring, the inbox's tables,
# the login exemptions, the connections page. Each now reads the registry and names no provider.
WIRING = (
    "connector/app.py",
    "webhooks/inbox.py",
    "connector/auth.py",
    "connector/admin/templates/admin/connections.html",
)


@pytest.mark.parametrize("path", WIRING)
def test_the_wiring_names_no_provider(path: str):
    names = [key for key, info in PROVIDERS.items() if info.external]
    word = re.compile(rf"\b({'|'.join(names)})\b", re.IGNORECASE)
    text = (ROOT / path).read_text()
    assert word.findall(text) == []
