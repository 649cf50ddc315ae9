"""Why a draft is held, in words an admin can act on: a customer's missing rates and currency
mismatches, and projects that map to no customer."""

from __future__ import annotations

from collections.abc import Callable

from connector.billing.accumulators import CustomerAccumulator, DisplayNames, UnmappedProject
from connector.billing.lines import format_duration, period_text
from connector.billing.records import (
    HOLD_CURRENCY_MISMATCH,
    HOLD_NEEDS_MAPPING,
    HOLD_NEEDS_RATE,
    Hold,
    Member,
)


def customer_holds(
    acc: CustomerAccumulator, member: Member, key: str, names: DisplayNames
) -> list[Hold]:
    customer = acc.customer
    subject = f"customer:{customer.id}"
    held_text = f"The whole draft for {customer.name} ({customer.id}) is held."
    holds = []
    if acc.missing:
        project_ids = tuple(sorted(acc.missing))
        missing = [acc.missing[p] for p in project_ids]
        minutes = sum(m.tracked for m in missing)
        first = min(m.first for m in missing)
        last = max(m.last for m in missing)
        client_ids = tuple(sorted(set().union(*(m.client_ids for m in missing))))
        holds.append(
            Hold(
                reason=HOLD_NEEDS_RATE,
                subject_key=subject,
                customer=customer,
                message=(
                    f"No rate for {member.name} on project(s) "
                    f"{', '.join(names.project_label(customer.id, p) for p in project_ids)} "
                    f"({format_duration(minutes)}, {period_text(first, last)}): add a rate for the "
                    f"member and project, the project, the customer or the workspace. {held_text}"
                ),
                minutes=minutes,
                project_ids=project_ids,
                client_ids=client_ids,
                key=key,
                member_id=member.id,
            )
        )
    if acc.mismatch:
        parts = []
        minutes = 0
        project_set: set[str] = set()
        for currency, source in sorted(acc.mismatch):
            per_project = acc.mismatch[(currency, source)]
            minutes += sum(per_project.values())
            project_set.update(per_project)
            projects = ", ".join(names.project_label(customer.id, p) for p in sorted(per_project))
            parts.append(f"{projects} priced in {currency} ({source} rate)")
        holds.append(
            Hold(
                reason=HOLD_CURRENCY_MISMATCH,
                subject_key=subject,
                customer=customer,
                message=(
                    f"{customer.name} ({customer.id}) is billed in {customer.currency}, but "
                    f"{member.name}'s time on {'; '.join(parts)}. Amounts are never converted: "
                    f"use a {customer.currency} rate or change the customer. {held_text}"
                ),
                minutes=minutes,
                project_ids=tuple(sorted(project_set)),
                client_ids=tuple(sorted(acc.client_ids)),
                key=key,
                member_id=member.id,
                currencies=tuple(sorted({c for c, _ in acc.mismatch})),
            )
        )
    return holds


def unmapped_holds(
    unmapped: dict[str, UnmappedProject],
    names: DisplayNames,
    member: Member,
    key_of: Callable[[str], str],
) -> list[Hold]:
    """One needs_mapping hold per project that resolved to no customer, in project id order.

    Per project, not per client, because mapping the project always resolves its rows; its
    clients are named too, since mapping one of them resolves that client's rows. The key is
    derived from the project id, as a held customer's is from the customer id.
    """
    holds = []
    for project_id in sorted(unmapped):
        project = unmapped[project_id]
        clients = sorted(project.client_ids)
        client_text = (
            "client " + ", ".join(names.client_label(None, c) for c in clients)
            if clients
            else "no tracker client"
        )
        holds.append(
            Hold(
                reason=HOLD_NEEDS_MAPPING,
                subject_key=f"project:{project_id}",
                customer=None,
                message=(
                    f"{member.name} tracked {format_duration(project.tracked)} on project "
                    f"{names.project_label(None, project_id)} ({client_text}), which is not "
                    "mapped to a customer: map the project or its client to a customer."
                ),
                minutes=project.tracked,
                project_ids=(project_id,),
                client_ids=tuple(clients),
                key=key_of(f"unmapped-project:{project_id}"),
                member_id=member.id,
            )
        )
    return holds
