"""Ranking accounting customers for a tracker client: names, suffixes, domains, confidence."""

from __future__ import annotations

import pytest

from connector.providers.base import AccountingCustomer
from mappings.suggest import (
    CONFIDENT_SCORE,
    confident_choice,
    email_domain,
    name_similarity,
    normalize_name,
    rank_customers,
)


def customer(cid: str, name: str, email: str | None = None) -> AccountingCustomer:
    return AccountingCustomer(id=cid, name=name, email=email)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACME, Inc.", "acme"),
        ("Acme Incorporated", "acme"),
        ("Globex L.L.C.", "globex"),
        ("Umbrella Ltd", "umbrella"),
        ("The Initech Corp", "initech"),
        ("Müller & Söhne GmbH", "muller and sohne"),
        ("Company", "company"),  # a name made only of a suffix keeps it
        ("  ", ""),
        (None, ""),
    ],
)
def test_normalize_name(raw: str | None, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_email_domain_ignores_free_mail_and_garbage() -> None:
    assert email_domain("AP@Globex.Example") == "globex.example"
    assert email_domain("someone@gmail.com") is None
    assert email_domain("not-an-email") is None
    assert email_domain(None) is None


def test_same_company_with_other_suffix_is_an_exact_match() -> None:
    assert name_similarity("Globex", "Globex Corporation") == 1.0
    assert name_similarity("Acme Inc", "ACME, LLC") == 1.0


def test_typos_and_word_order_score_high_but_below_exact() -> None:
    assert 0.8 < name_similarity("Initech", "Inittech") < 1.0
    assert 0.8 < name_similarity("Hooli Labs", "Labs Hooli") < 1.0


def test_ranking_puts_best_first_and_drops_noise() -> None:
    customers = [
        customer("1", "Initech"),
        customer("2", "Globex Corporation", "billing@globex.example"),
        customer("3", "Globe Trotters"),
        customer("4", "Umbrella Ltd"),
    ]
    ranked = rank_customers("Globex", "ap@globex.example", customers)
    assert [s.customer.id for s in ranked][:2] == ["2", "3"]
    assert "same name" in ranked[0].reasons
    assert any("email domain" in r for r in ranked[0].reasons)
    assert all(s.customer.id not in {"1", "4"} for s in ranked)


def test_email_domain_alone_is_suggested_but_not_confident() -> None:
    customers = [customer("9", "GX Holdings", "finance@globex.example")]
    ranked = rank_customers("Globex Marketing", "ap@globex.example", customers)
    assert ranked and ranked[0].customer.id == "9"
    assert ranked[0].score < CONFIDENT_SCORE
    assert confident_choice(ranked) is None


def test_confident_only_when_clear_winner() -> None:
    one = rank_customers("Globex", None, [customer("2", "Globex Corp"), customer("3", "Initech")])
    assert confident_choice(one) is not None
    assert confident_choice(one).customer.id == "2"

    # Two customers that normalise to the same name: a human must choose.
    two = rank_customers("Globex", None, [customer("2", "Globex Inc"), customer("5", "Globex LLC")])
    assert len(two) == 2
    assert confident_choice(two) is None


def test_near_miss_is_not_confident() -> None:
    ranked = rank_customers("Initech", None, [customer("1", "Initrode")])
    assert confident_choice(ranked) is None


def test_ties_are_ordered_by_name_then_id_for_stable_pages() -> None:
    ranked = rank_customers("Acme", None, [customer("b", "ACME LLC"), customer("a", "Acme Inc")])
    assert [s.customer.id for s in ranked] == ["a", "b"]


def test_no_customers_no_suggestions() -> None:
    assert rank_customers("Anything", None, []) == []
    assert confident_choice([]) is None
