"""The trust policy of every role the broker creates: only EC2 may assume it."""

import json
from typing import Any

EC2_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    },
    sort_keys=True,
    separators=(",", ":"),
)


def trusts_only_ec2(document: dict[str, Any]) -> bool:
    """Whether a role's trust policy is exactly the broker's: anything more lets others in."""
    ec2_only: dict[str, Any] = json.loads(EC2_TRUST_POLICY)
    return document == ec2_only
