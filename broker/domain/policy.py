"""The instance's IAM policy: all live grants merged into one deterministic, minimal document.

Object actions go on `arn:aws:s3:::bucket/prefix*`, bucket actions on `arn:aws:s3:::bucket`, in
separate statements. Listing is scoped with an `s3:prefix` condition, so it is never merged across
buckets that allow different prefixes. A Binding (BROKER_REQUIRE_IMDSV2, BROKER_BIND_CREDENTIALS)
adds its conditions to every statement: credentials that only work where they belong.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from broker.domain.access import Access
from broker.domain.errors import PolicyTooLarge
from broker.domain.grants import GrantScope

# IAM's limit for all inline policies of one role together, whitespace not counted.
INLINE_POLICY_LIMIT = 10_240

_UPLOAD_OBJECT = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
_READ_OBJECT = ("s3:GetObject",)

OBJECT_ACTIONS: dict[Access, tuple[str, ...]] = {
    Access.UPLOAD: _UPLOAD_OBJECT,
    Access.READ: _READ_OBJECT,
    Access.READ_WRITE: (*_READ_OBJECT, *_UPLOAD_OBJECT, "s3:DeleteObject"),
    Access.LIST: (),
}
# Bucket actions needing no condition.
BUCKET_ACTIONS: dict[Access, tuple[str, ...]] = {
    Access.UPLOAD: ("s3:ListBucketMultipartUploads",),
    Access.READ: (),
    Access.READ_WRITE: ("s3:ListBucketMultipartUploads",),
    Access.LIST: (),
}
LISTS_BUCKET = frozenset({Access.READ, Access.READ_WRITE, Access.LIST})

PolicyDocument = dict[str, Any]

# Credentials delivered through IMDSv2 only: IMDSv1's are refused (AWS sets ec2:RoleDelivery).
IMDSV2_CONDITION = {"NumericGreaterThanEquals": {"ec2:RoleDelivery": "2.0"}}
# Requests from the instance's own VPC only (through an S3 gateway endpoint, aws:SourceVpc is
# the VPC; aws:ec2InstanceSourceVPC is the instance's): copied credentials are useless elsewhere.
SAME_VPC_CONDITION = {"StringEquals": {"aws:SourceVpc": "${aws:ec2InstanceSourceVPC}"}}


@dataclass(frozen=True)
class Binding:
    """Conditions every statement of an instance's policy carries, so that its credentials work
    only where they belong."""

    require_imdsv2: bool = False
    same_vpc: bool = False

    @property
    def conditions(self) -> dict[str, dict[str, str]]:
        """By condition operator, what each statement must carry (empty: nothing)."""
        chosen = [
            *([IMDSV2_CONDITION] if self.require_imdsv2 else []),
            *([SAME_VPC_CONDITION] if self.same_vpc else []),
        ]
        return {operator: keys for condition in chosen for operator, keys in condition.items()}


# Credentials bound to nothing: the broker's default.
UNBOUND = Binding()


def build_policy(scopes: Iterable[GrantScope], binding: Binding = UNBOUND) -> PolicyDocument | None:
    """The policy document for these grants, or None when there is nothing to grant."""
    scopes = set(scopes)
    if not scopes:
        return None
    statements = [
        *_object_statements(scopes),
        *_bucket_statements(scopes),
        *_list_statements(scopes),
    ]
    statements.sort(key=lambda s: str(s["Sid"]))
    return {"Version": "2012-10-17", "Statement": [_bound(s, binding) for s in statements]}


def _bound(statement: dict[str, Any], binding: Binding) -> dict[str, Any]:
    """The statement with the binding's conditions beside its own (an s3:prefix, for listing)."""
    if not binding.conditions:
        return statement
    return {**statement, "Condition": {**statement.get("Condition", {}), **binding.conditions}}


def render(document: PolicyDocument) -> str:
    """The canonical JSON of a document: same grants, same bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def policy_size(document: PolicyDocument) -> int:
    """The size IAM charges against its limit: characters of the JSON, whitespace not counted."""
    return sum(1 for ch in render(document) if not ch.isspace())


def check_size(document: PolicyDocument | None) -> None:
    if document is None:
        return
    size = policy_size(document)
    if size > INLINE_POLICY_LIMIT:
        raise PolicyTooLarge(size, INLINE_POLICY_LIMIT)


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, prefix: str) -> str:
    return f"arn:aws:s3:::{bucket}/{_escape(prefix)}*"


def list_pattern(prefix: str) -> str:
    """The s3:prefix pattern that lets listing see the keys under `prefix`."""
    return _escape(prefix) + "*"


def _escape(text: str) -> str:
    # IAM reads "${...}" in a resource or condition as a policy variable; "${$}" is a literal $.
    return text.replace("$", "${$}")


def _object_statements(scopes: set[GrantScope]) -> list[dict[str, Any]]:
    actions_by_resource: dict[str, set[str]] = defaultdict(set)
    for scope in scopes:
        if OBJECT_ACTIONS[scope.access]:
            actions_by_resource[object_arn(scope.bucket, scope.prefix)].update(
                OBJECT_ACTIONS[scope.access]
            )
    return _merge("Objects", actions_by_resource)


def _bucket_statements(scopes: set[GrantScope]) -> list[dict[str, Any]]:
    actions_by_resource: dict[str, set[str]] = defaultdict(set)
    for scope in scopes:
        if BUCKET_ACTIONS[scope.access]:
            actions_by_resource[bucket_arn(scope.bucket)].update(BUCKET_ACTIONS[scope.access])
    return _merge("Bucket", actions_by_resource)


def _list_statements(scopes: set[GrantScope]) -> list[dict[str, Any]]:
    # None stands for "any prefix": one grant on the whole bucket makes the condition moot.
    prefixes_by_bucket: dict[str, set[str] | None] = {}
    for scope in scopes:
        if scope.access not in LISTS_BUCKET:
            continue
        known = prefixes_by_bucket.setdefault(scope.bucket, set())
        if scope.prefix == "" or known is None:
            prefixes_by_bucket[scope.bucket] = None
        else:
            known.add(scope.prefix)
    buckets_by_condition: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for bucket, prefixes in prefixes_by_bucket.items():
        patterns = () if prefixes is None else tuple(sorted(list_pattern(p) for p in prefixes))
        buckets_by_condition[patterns].append(bucket_arn(bucket))
    statements = []
    for patterns, resources in buckets_by_condition.items():
        statement = _statement("List", ["s3:ListBucket"], resources, patterns)
        if patterns:
            statement["Condition"] = {"StringLike": {"s3:prefix": list(patterns)}}
        statements.append(statement)
    return statements


def _merge(kind: str, actions_by_resource: dict[str, set[str]]) -> list[dict[str, Any]]:
    """One statement per distinct action set, holding every resource that has exactly that set."""
    resources_by_actions: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for resource, actions in actions_by_resource.items():
        resources_by_actions[tuple(sorted(actions))].append(resource)
    return [
        _statement(kind, list(actions), resources, ())
        for actions, resources in resources_by_actions.items()
    ]


def _statement(
    kind: str, actions: list[str], resources: list[str], condition: tuple[str, ...]
) -> dict[str, Any]:
    # The Sid names the statement by its actions and condition, so it is stable and unique.
    digest = hashlib.sha256(json.dumps([actions, condition]).encode()).hexdigest()[:12]
    return {
        "Sid": f"{kind}{digest}",
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": sorted(resources),
    }
