"""The admin API's audit routes, gathered for the app: ``AUDIT_HANDLERS``. Every one takes role
``auditor`` (or the admin token) and sees the rows of the reader's scope
(:mod:`gateway.http.audit_query`); every read is itself recorded in the audit trail.

- the trail's reads (:mod:`gateway.http.audit_trail_admin`): ``GET /admin/audit/export``,
  ``/admin/audit/entries``, ``/admin/audit/verify`` and ``/admin/audit/content/{request_id}``;
- its reports and the data-subject search (:mod:`gateway.http.audit_report_admin`):
  ``GET /admin/audit/usage``, ``/admin/audit/transfers``, ``/admin/audit/denials`` and
  ``POST /admin/audit/subjects``.

The evidence pack, configurations and bundles are :mod:`gateway.http.evidence_admin`'s.
"""

from __future__ import annotations

from gateway.http.audit_report_admin import (
    audit_denials,
    audit_subjects,
    audit_transfers,
    audit_usage,
)
from gateway.http.audit_trail_admin import audit_content, audit_entries, audit_verify, export_audit

__all__ = ["AUDIT_HANDLERS"]

AUDIT_HANDLERS = [
    audit_subjects,
    export_audit,
    audit_usage,
    audit_transfers,
    audit_denials,
    audit_entries,
    audit_verify,
    audit_content,
]
