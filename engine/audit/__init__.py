"""Bias and fairness audit: metrics by user and item group with statistics that hold up."""

from engine.audit.config import AuditConfig
from engine.audit.run import METRICS, AuditResult, run_audit

__all__ = ["METRICS", "AuditConfig", "AuditResult", "run_audit"]
