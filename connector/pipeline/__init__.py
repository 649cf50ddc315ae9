"""One approval from a stored delivery to recorded drafts, module by module.

    handlers.process_delivery    the worker's job: delivery -> tracker event, under the
                                 timesheet lock (work_locks.py; the worker hands it the app's
                                 configuration)
    -> planning.apply_approval   the Timesheet row and its revision (a withdrawal goes to
                                 withdrawing.apply_withdrawal instead); tracker_entities.py
                                 records the members, projects and clients it names
    -> planning.plan_drafts      billing (pure; its inputs read by inputs.py, with the mappings
                                 of the books the workspace bills to now) -> one Draft row per
                                 customer, or a hold with its reason (other_books.py says when a
                                 client was mapped in other books); lines stored as JSON
    -> pushing.push_drafts       each row onto its invoice (invoices.py: the provider document,
                                 one per timesheet, or per customer and period under per_period
                                 consolidation): the row whose key the invoice carries creates it
                                 (provider.create_draft), the others append (append_lines); the
                                 request is built by invoice_requests.draft_invoice (pure)
    -> invoices.record_created   the provider's answer stored on the invoice and the row
    withdrawing                  a withdrawn or replaced approval's rows taken off their invoices
    commands                     what the console, the API and the connect pages call: release
                                 holds, retry, re-bill (run by handlers.rebill_timesheet), preview

Exactly-once rules kept here:
  * a Draft row and its deterministic key are committed BEFORE the provider is called;
  * ``attempts`` is incremented (and committed) before each call, so after a crash or an unknown
    outcome the next run looks the invoice up by key (``find_draft``) before creating;
  * the provider id is stored only after the provider confirmed the draft;
  * all work on one timesheet runs under a cross-process advisory lock.

Importing this package registers the job handlers (process_delivery, bill_timesheet,
rebill_timesheet) with the worker.
"""

from __future__ import annotations

from connector.pipeline.commands import (
    RebillRefused,
    approvals_with_created_drafts,
    future_approvals_notice,
    on_connection_restored,
    preview_event,
    release_holds,
    request_rebill,
    retry_timesheet,
)
from connector.pipeline.draft_status import is_live
from connector.pipeline.handlers import bill_timesheet_now
from connector.pipeline.inputs import billing_settings, load_mappings, load_rates, run_billing
from connector.pipeline.planning import apply_approval, plan_drafts, timesheet_row
from connector.pipeline.withdrawing import withdraw_drafts

__all__ = [
    "RebillRefused",
    "apply_approval",
    "approvals_with_created_drafts",
    "bill_timesheet_now",
    "billing_settings",
    "future_approvals_notice",
    "is_live",
    "load_mappings",
    "load_rates",
    "on_connection_restored",
    "plan_drafts",
    "preview_event",
    "release_holds",
    "request_rebill",
    "retry_timesheet",
    "run_billing",
    "timesheet_row",
    "withdraw_drafts",
]
