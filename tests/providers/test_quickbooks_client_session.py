"""A worker thread keeps its QuickBooks connections across jobs, and no cookies at all."""

from __future__ import annotations

import threading

import requests
import responses

from connector.providers.quickbooks import client as quickbooks_http


def test_one_session_per_thread_outlives_each_jobs_provider() -> None:
    first, second = quickbooks_http.thread_session(), quickbooks_http.thread_session()
    assert first is second
    other: list[requests.Session] = []
    thread = threading.Thread(target=lambda: other.append(quickbooks_http.thread_session()))
    thread.start()
    thread.join()
    assert other[0] is not first


@responses.activate
def test_the_shared_session_keeps_no_cookies() -> None:
    responses.get(
        "https://quickbooks.api.intuit.com/v3/company/1/companyinfo/1",
        json={},
        headers={"Set-Cookie": "qbn.tkt=abc; Domain=.intuit.com; Path=/"},
    )
    session = quickbooks_http.thread_session()
    session.get("https://quickbooks.api.intuit.com/v3/company/1/companyinfo/1")
    assert len(session.cookies) == 0
