"""Accounts of the emulator besides its default one: moto keeps one backend per account, and a
role seeded in a spoke's backend can be assumed from the default account over HTTP."""

import json
import uuid
from typing import Any

from moto.backends import get_backend

from broker.sandbox.emulator import ACCOUNT_ID


def fresh_account_id() -> str:
    return str(uuid.uuid4().int)[:12]


def iam_backend(account_id: str) -> Any:
    # moto keys IAM's backends by partition ("aws"), not by region.
    return get_backend("iam")[account_id]["aws"]


def seed_role(
    account_id: str, name: str, permissions: dict[str, Any], *, external_id: str = ""
) -> str:
    """A role in the account that the emulator's default account may assume (with the external
    id, when given), holding `permissions`; its ARN."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    trust = {"Version": "2012-10-17", "Statement": [statement]}
    role = iam_backend(account_id).create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(trust),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration=None,
    )
    iam_backend(account_id).put_role_policy(name, "permissions", json.dumps(permissions))
    return str(role.arn)
