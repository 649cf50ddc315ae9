"""The tracker seam: a tracker is its folder ``webhooks/<name>/`` plus one registry line.

Nothing outside a source's folder names it (the line in ``connector/app.py``'s
``TRACKER_SOURCES`` excepted): not the core, the console, the API, the CLI, the receiver, the
other sources or mappings. What a source offers is declared (``connector.trackers``), so the
receiver, the pipeline, the console and the CLI read it instead of knowing the source.
(``tests/test_tracker_seam_wire.py`` plugs in a second source and drives it at the wire.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from connector import trackers

ROOT = Path(__file__).resolve().parent.parent
CODE = ("connector", "webhooks", "mappings")
SUFFIXES = {".py", ".html", ".js", ".css", ".json", ".txt"}
APP = ROOT / "connector" / "app.py"
# Every folder under webhooks/ with a setup.py is a tracker source.
FOLDERS = {p.parent.name: p.parent for p in sorted((ROOT / "webhooks").glob("*/setup.py"))}


def _word(name: str) -> re.Pattern[str]:
    # WEBWORK_POLL_SECONDS names it too: only letters and digits continue a name.
    return re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", re.IGNORECASE)


def _files_outside(folder: Path) -> list[Path]:
    return [
        path
        for top in CODE
        for path in sorted((ROOT / top).rglob("*"))
        if path.suffix in SUFFIXES
        and path.is_file()
        and folder not in path.parents
        and "__pycache__" not in path.parts
        # The schema's history: migrations are never edited.
        and "migrations" not in path.relative_to(ROOT).parts
    ]


def _registry_line(name: str) -> str:
    return f'"webhooks.{name}.setup"'


def test_the_sources_are_found() -> None:
    assert "webwork" in FOLDERS


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_nothing_outside_a_trackers_folder_names_it(name: str) -> None:
    word = _word(name)
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _files_outside(FOLDERS[name])
        for n, line in enumerate(path.read_text(errors="ignore").splitlines(), 1)
        if word.search(line) and not (path == APP and _registry_line(name) in line)
    ]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_one_registry_line_plugs_a_source_in(name: str) -> None:
    from connector.app import TRACKER_SOURCES

    assert f"webhooks.{name}.setup" in TRACKER_SOURCES
    lines = [line for line in APP.read_text().splitlines() if _word(name).search(line)]
    assert len(lines) == 1 and _registry_line(name) in lines[0]


def test_the_grep_would_catch_a_source_named_outside_its_folder(tmp_path: Path) -> None:
    """The check above is not vacuous: these are the forms a leak takes."""
    word = _word("webwork")
    for leak in ('if source == "webwork":', "WEBWORK_POLL_SECONDS", "Connect WebWork", "webwork/"):
        assert word.search(leak), leak
    for fine in ("webworker", "networks"):
        assert not word.search(fine), fine


def test_the_default_source_is_the_first_registry_line(app: Any) -> None:
    from connector.app import TRACKER_SOURCES

    assert TRACKER_SOURCES[0].split(".")[1] == trackers.default_source()


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_each_source_declares_what_the_core_reads(app: Any, name: str) -> None:
    source = trackers.get_source(name)
    assert set(source.event_kinds.values()) == {trackers.APPROVAL, trackers.WITHDRAWAL}
    assert source.signature is not None
    assert source.contract is not None and source.contract.schema_path.is_file()
    assert source.contract.default_sample in source.contract.samples
    assert all(path.is_file() for path in source.contract.samples.values())
    assert source.card is not None and app.jinja_env.get_template(source.card.template)
    assert source.account is not None
    if source.poller is not None:
        from connector import worker

        assert source.poller.job_kind in worker.HANDLERS
        assert source.poller.interval_setting in app.config


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_each_sources_samples_parse_and_normalize(app: Any, name: str) -> None:
    import json

    contract = trackers.get_source(name).contract
    assert contract is not None
    for sample, path in contract.samples.items():
        body = json.dumps(contract.address(json.loads(path.read_text()), "ws-1")).encode()
        event = trackers.parse_event(name, body)
        assert event.workspace_id == "ws-1", sample
        if trackers.kind_of(name, event.type) == trackers.APPROVAL and not event.is_thin:
            assert trackers.normalize_timesheet(name, event.timesheet).id == event.timesheet_id
