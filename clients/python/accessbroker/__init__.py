"""Python client for the accessbroker gRPC API.

from accessbroker import BrokerClient

with BrokerClient("127.0.0.1:50051") as broker:
    result = broker.grant("i-0123456789abcdef0", "reports", "upload", prefix="nightly/")
    print(result.grant.grant_id, result.grant.state)
"""

from accessbroker import errors
from accessbroker.client import BrokerClient, mutual_tls, tls_from_environment, tls_from_files
from accessbroker.errors import BrokerError
from accessbroker.models import (
    Access,
    AccessDecision,
    Approval,
    AuditEvent,
    Drift,
    DriftKind,
    Grant,
    GrantResult,
    GrantState,
    InstanceAccess,
    NotificationDestination,
)

__all__ = [
    "Access",
    "AccessDecision",
    "Approval",
    "AuditEvent",
    "BrokerClient",
    "BrokerError",
    "Drift",
    "DriftKind",
    "Grant",
    "GrantResult",
    "GrantState",
    "InstanceAccess",
    "NotificationDestination",
    "errors",
    "mutual_tls",
    "tls_from_environment",
    "tls_from_files",
]
