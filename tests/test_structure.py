"""The structure the import contracts cannot see: registries that dispatch, descriptors that
agree with the classes, and no first-party import hidden inside a function to dodge a cycle."""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from connector import trackers
from connector.providers import DISPLAY_NAMES, EXTERNAL_PROVIDERS, PROVIDERS, build_provider
from connector.providers.base import AccountingProvider, ReconnectNeeded

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("connector", "webhooks", "mappings")
# Imports deliberately made inside a function, and why (each is not a cycle being dodged).
ALLOWED_INNER_IMPORTS = {
    # The package loads its composition root on first use so `import connector.models` stays light.
    ("connector/__init__.py", "connector.app"),
    # Alembic loads only for the commands that migrate.
    ("connector/cli.py", "connector.migrate"),
    # gunicorn reads its config file before the app exists.
    ("connector/gunicorn_conf.py", "connector.config"),
}


def _inner_first_party_imports() -> set[tuple[str, str]]:
    found = set()
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts or "tests" in path.parts:
                continue  # product code only: a source's tests live beside it
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module:
                        if inner.module.split(".")[0] in FIRST_PARTY:
                            names = [alias.name for alias in inner.names]
                            target = (
                                f"{inner.module}.{names[0]}"
                                if inner.module == "connector" and len(names) == 1
                                else inner.module
                            )
                            found.add((str(path.relative_to(ROOT)), target))
                    elif isinstance(inner, ast.Import):
                        for alias in inner.names:
                            if alias.name.split(".")[0] in FIRST_PARTY:
                                found.add((str(path.relative_to(ROOT)), alias.name))
    return found


def test_no_first_party_import_hides_inside_a_function() -> None:
    assert _inner_first_party_imports() - ALLOWED_INNER_IMPORTS == set()


def _private_names_used_across_modules() -> set[tuple[str, str]]:
    """(file, module.name) for each underscore name a product module imports from another."""
    found: set[tuple[str, str]] = set()
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "tests" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.module.split(".")[0] in FIRST_PARTY
                ):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            found.add((str(path.relative_to(ROOT)), f"{node.module}.{alias.name}"))
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    # A helper another module needs is part of its module's interface: name it without the
    # underscore, so a reader knows it is used elsewhere (and a refactor knows to look).
    assert _private_names_used_across_modules() == set()


def test_every_provider_descriptor_matches_its_class(app: Any) -> None:
    assert set(EXTERNAL_PROVIDERS) == {k for k, info in PROVIDERS.items() if info.external}
    for key, info in PROVIDERS.items():
        module = importlib.import_module(info.module)
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, AccountingProvider)
            and value is not AccountingProvider
            and value.__module__ == module.__name__
        ]
        assert [(c.name, c.display_name) for c in classes] == [(key, DISPLAY_NAMES[key])]
        if info.external:
            assert info.connect_blueprint in app.blueprints, key


def test_an_unknown_provider_waits_for_a_reconnect_instead_of_failing(app: Any) -> None:
    with pytest.raises(ReconnectNeeded):
        build_provider(1, "no-such-books", app.config)


@dataclass(frozen=True)
class _FakeEvent:
    type: str
    workspace_id: str
    timesheet: dict[str, Any]
    timestamp: datetime = datetime(2026, 1, 1)
    source: str = "fake"
    supported: bool = True
    is_approval: bool = True
    is_thin: bool = False

    @property
    def timesheet_id(self) -> str:
        return str(self.timesheet["id"])


def test_the_core_dispatches_parse_and_normalize_by_source(app: Any) -> None:
    """A second tracker is one registration: the core calls it by the delivery's source."""
    seen: list[tuple[str, Any]] = []

    def parse(body: bytes) -> _FakeEvent:
        seen.append(("parse", body))
        return _FakeEvent("approved", "w1", {"id": "t1"})

    def normalize(raw: dict[str, Any]) -> Any:
        seen.append(("normalize", raw))
        return "normalized"

    trackers.register_source(
        "fake", display_name="Fake tracker", parse_event=parse, normalize_timesheet=normalize
    )
    try:
        assert trackers.is_source("fake") and trackers.is_source("webwork")
        assert trackers.parse_event("fake", b"{}").timesheet_id == "t1"
        assert trackers.normalize_timesheet("fake", {"id": "t1"}) == "normalized"
        assert seen == [("parse", b"{}"), ("normalize", {"id": "t1"})]
        with pytest.raises(trackers.UnknownSource):
            trackers.parse_event("no-such-tracker", b"{}")
    finally:
        trackers.SOURCES.pop("fake", None)
        trackers.TRACKER_PROVIDERS.pop("fake", None)


def test_webwork_errors_are_the_core_event_error(app: Any) -> None:
    with pytest.raises(trackers.EventError) as caught:
        trackers.parse_event("webwork", b"not json")
    assert caught.value.status == 400


def test_the_import_contracts_have_no_exceptions_and_place_every_core_package() -> None:
    """Issue 22: no ``ignore_imports`` and no ``allow_indirect_imports`` (a chain through any
    module counts), and the providers, the OAuth client, the credential store, the database,
    billing and money each have their place in the layers."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    for contract in contracts:
        assert "ignore_imports" not in contract, contract["name"]
        assert not contract.get("allow_indirect_imports"), contract["name"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    for module in (
        "connector.consumer",
        "connector.worker",
        "connector.providers",
        "connector.oauth",
        "connector.connections.store",
        "connector.db",
        "connector.billing",
        "connector.money",
    ):
        assert module in layers, module
    assert layers.index("connector.providers") > layers.index("connector.jobs : connector.trackers")
