"""Rank accounting customers for a tracker client or project: who is this most likely?

Pure: no Flask, no database. Names are compared after normalisation (case, accents,
punctuation, "&"/"and", company suffixes such as Inc/LLC/Ltd), with difflib for typos and a
token overlap for reordered words; a shared business email domain is strong extra evidence.

A suggestion is *confident* when it scores at least ``CONFIDENT_SCORE`` and beats the runner-up
by ``CONFIDENT_MARGIN``: two customers called "Globex Inc" and "Globex LLC" are never accepted
in bulk, a human picks one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Final

from connector.providers.base import AccountingCustomer

CONFIDENT_SCORE: Final = 0.9
CONFIDENT_MARGIN: Final = 0.1
# Below this a "suggestion" is noise; the admin searches the full list instead.
MIN_SCORE: Final = 0.5
# A matching email domain lifts the score by this much, from at least DOMAIN_FLOOR: on its own
# (unrelated names) it reaches 0.85 - shown first, but never accepted in bulk without a name match.
DOMAIN_BONUS: Final = 0.15
DOMAIN_FLOOR: Final = 0.7

COMPANY_SUFFIXES: Final = frozenset(
    {
        "inc", "incorporated", "llc", "llp", "lp", "pllc", "ltd", "limited", "corp",
        "corporation", "co", "company", "plc", "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl",
        "spa", "bv", "nv", "oy", "ab", "as", "aps", "pty", "pte", "kk", "sl", "group",
    }
)  # fmt: skip
# Shared mailbox providers say nothing about which company a person belongs to.
FREE_MAIL_DOMAINS: Final = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
        "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de",
        "mail.com", "yandex.ru", "zoho.com",
    }
)  # fmt: skip

_NON_ALNUM: Final = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class Suggestion:
    customer: AccountingCustomer
    score: float  # 0..1
    reasons: tuple[str, ...]  # plain words for the admin: "same name", "same email domain"


def normalize_name(name: str | None) -> str:
    """'ACME, Inc.' -> 'acme'; 'Müller & Söhne GmbH' -> 'muller and sohne'."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ")
    # "L.L.C." and "S.A." must collapse to "llc"/"sa" before punctuation becomes spaces.
    text = re.sub(r"\b((?:[a-z]\.){2,})", lambda m: m.group(1).replace(".", ""), text)
    tokens = [t for t in _NON_ALNUM.split(text) if t]
    if tokens and tokens[0] == "the" and len(tokens) > 1:
        tokens = tokens[1:]
    # Strip suffixes from the end only ("Company Store" keeps its first word), never all of it.
    while len(tokens) > 1 and tokens[-1] in COMPANY_SUFFIXES:
        tokens.pop()
    return " ".join(tokens)


def email_domain(email: str | None) -> str | None:
    """The business domain of an address, or None for free-mail and malformed addresses."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    if not domain or "." not in domain or domain in FREE_MAIL_DOMAINS:
        return None
    return domain


def name_similarity(a: str | None, b: str | None) -> float:
    """0..1: 1.0 for the same normalised name; typos and word order cost a little."""
    na, nb = normalize_name(a), normalize_name(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    ta, tb = na.split(), nb.split()
    char_ratio = SequenceMatcher(None, na, nb).ratio()
    sorted_ratio = SequenceMatcher(None, " ".join(sorted(ta)), " ".join(sorted(tb))).ratio()
    shared = len(set(ta) & set(tb))
    overlap = 2 * shared / (len(set(ta)) + len(set(tb)))
    # Exact equality is reserved for 1.0, so a near miss never counts as "the same name".
    return min(0.99, max(char_ratio, sorted_ratio, overlap))


def score_customer(
    name: str | None, email: str | None, customer: AccountingCustomer
) -> tuple[float, tuple[str, ...]]:
    score = name_similarity(name, customer.name)
    reasons: list[str] = []
    if score == 1.0:
        reasons.append("same name")
    elif score >= MIN_SCORE:
        reasons.append(f"similar name ({round(score * 100)}%)")
    domain = email_domain(email)
    if domain and domain == email_domain(customer.email):
        score = min(1.0, max(score, DOMAIN_FLOOR) + DOMAIN_BONUS)
        reasons.append(f"same email domain ({domain})")
    return round(score, 4), tuple(reasons)


def rank_customers(
    name: str | None,
    email: str | None,
    customers: Iterable[AccountingCustomer],
    *,
    limit: int = 5,
    min_score: float = MIN_SCORE,
) -> list[Suggestion]:
    """The best ``limit`` customers scoring at least ``min_score``, best first."""
    ranked = []
    for customer in customers:
        score, reasons = score_customer(name, email, customer)
        if score >= min_score:
            ranked.append(Suggestion(customer=customer, score=score, reasons=reasons))
    ranked.sort(key=lambda s: (-s.score, s.customer.name.lower(), s.customer.id))
    return ranked[:limit]


def confident_choice(suggestions: Sequence[Suggestion]) -> Suggestion | None:
    """The top suggestion if it is safe to accept without a human looking; else None."""
    if not suggestions:
        return None
    top = suggestions[0]
    if top.score < CONFIDENT_SCORE:
        return None
    if len(suggestions) > 1 and top.score - suggestions[1].score < CONFIDENT_MARGIN:
        return None
    return top
