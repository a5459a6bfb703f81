"""Bias and fairness audit: metrics by user and item group with statistics that hold up.

Each audited metric is declared once as a ``MetricSpec`` in ``REGISTRY``
(``engine.audit.specs``; the mechanism is ``engine.audit.registry``).
"""

from engine.audit.config import AuditConfig
from engine.audit.registry import MetricSpec, Registry
from engine.audit.run import AuditResult, run_audit
from engine.audit.specs import REGISTRY

__all__ = ["REGISTRY", "AuditConfig", "AuditResult", "MetricSpec", "Registry", "run_audit"]
