"""The permissions boundary bounds what the broker can do to roles, and what its roles can do.

Under the emulator's authorization, which evaluates the iam:PermissionsBoundary condition and
a role's boundary as AWS does (broker/sandbox/authorization.py): the broker's own credentials
(exactly deploy/iam/broker-policy.json) cannot create a role without the boundary, cannot take
it off or swap it for another, and cannot write a policy on its own role while the boundary is
off; a role that carries it can do nothing beyond the boundary, whatever its own policy says;
and a boundary removed behind the broker's back is drift, put back and audited.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from accessbroker.v1 import broker_pb2 as pb
from broker.domain.boundary import BOUNDARY_NAME, boundary_document
from broker.domain.trust import EC2_TRUST_POLICY
from broker.sandbox import Credentials, Emulator
from broker.sandbox.emulator import mint_role_credentials
from broker.sandbox.instance_view import ALLOWED, s3_outcome
from tests.aws_outcomes import outcome, refusal
from tests.e2e.broker_process import BrokerProcess
from tests.e2e.calls import grant
from tests.e2e.drift import audit_events, drift_kinds_in, reconcile
from tests.e2e.reloading import hang_up
from tests.e2e.spokes import Spoke
from tests.e2e.test_accounts import hub_broker
from tests.e2e.test_broker_policy import (
    broker_as,
    broker_policy,
    identity_holding,
)
from tests.waiting import wait_for

PATH = "/accessbroker/"
EVERYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def own_role_name() -> str:
    """A name on the broker's own path and prefix that no instance has (sweeps ignore it)."""
    return f"accessbroker-proof-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def broker_credentials(emulator: Emulator) -> Credentials:
    return identity_holding(emulator, broker_policy())


@pytest.fixture(scope="module")
def wider(emulator: Emulator) -> str:
    """A policy allowing everything: the boundary a compromised broker would like to use."""
    name = f"wider-{uuid.uuid4().hex[:8]}"
    created = emulator.client("iam").create_policy(PolicyName=name, PolicyDocument=EVERYTHING)
    return created["Policy"]["Arn"]


def test_the_broker_cannot_create_a_role_without_the_boundary(
    emulator: Emulator, broker_credentials: Credentials, wider: str
) -> None:
    iam = emulator.client("iam", broker_credentials)
    role: dict[str, Any] = {"Path": PATH, "AssumeRolePolicyDocument": EC2_TRUST_POLICY}

    refusal(iam.create_role, RoleName=own_role_name(), **role)
    refusal(iam.create_role, RoleName=own_role_name(), PermissionsBoundary=wider, **role)
    name = own_role_name()
    iam.create_role(RoleName=name, PermissionsBoundary=emulator.permissions_boundary(), **role)

    bounded = emulator.client("iam").get_role(RoleName=name)["Role"]
    assert bounded["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith(BOUNDARY_NAME)


def test_the_broker_cannot_take_the_boundary_off_or_swap_it(
    emulator: Emulator, broker_credentials: Credentials, wider: str
) -> None:
    iam, admin = emulator.client("iam", broker_credentials), emulator.client("iam")
    name, boundary = own_role_name(), emulator.permissions_boundary()
    admin.create_role(
        RoleName=name,
        Path=PATH,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        PermissionsBoundary=boundary,
    )

    refusal(iam.delete_role_permissions_boundary, RoleName=name)
    refusal(iam.put_role_permissions_boundary, RoleName=name, PermissionsBoundary=wider)
    admin.delete_role_permissions_boundary(RoleName=name)  # someone else takes it off
    refusal(iam.put_role_policy, RoleName=name, PolicyName="p", PolicyDocument=EVERYTHING)
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)  # the repair

    assert admin.get_role(RoleName=name)["Role"]["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": boundary,
    }


# -- what a role inside the boundary can do, whatever its own policy says --------------------


@pytest.fixture(scope="module")
def bounded_spoke(emulator: Emulator) -> Spoke:
    """An account whose boundary names one bucket, as a platform team's would: `granted`; the
    account holds another, `other`, with an object in each."""
    spoke = Spoke(emulator, f"bounded-{uuid.uuid4().hex[:6]}", ("us-east-1",))
    s3 = spoke.client("s3")
    for bucket in ("granted", "other"):
        s3.create_bucket(Bucket=f"{bucket}-{spoke.id}")
        s3.put_object(Bucket=f"{bucket}-{spoke.id}", Key="data.csv", Body=b"x")
    boundary = json.dumps(boundary_document([f"granted-{spoke.id}"]))
    spoke.client("iam").create_policy_version(
        PolicyArn=f"arn:aws:iam::{spoke.id}:policy/{BOUNDARY_NAME}",
        PolicyDocument=boundary,
        SetAsDefault=True,
    )
    return spoke


def role_with_everything(spoke: Spoke, *, bounded: bool) -> Credentials:
    """A role holding {"Action": "*", "Resource": "*"}, written with the broker's credentials in
    the spoke (deploy/iam/spoke-permissions-policy.json) when `bounded`, else by the owner; the
    credentials EC2 would hand an instance holding it."""
    name = own_role_name()
    writer = spoke.broker_client("iam") if bounded else spoke.client("iam")
    boundary = f"arn:aws:iam::{spoke.id}:policy/{BOUNDARY_NAME}"
    writer.create_role(
        RoleName=name,
        Path=PATH,
        AssumeRolePolicyDocument=EC2_TRUST_POLICY,
        **({"PermissionsBoundary": boundary} if bounded else {}),
    )
    writer.put_role_policy(RoleName=name, PolicyName="everything", PolicyDocument=EVERYTHING)
    return mint_role_credentials(f"arn:aws:iam::{spoke.id}:role{PATH}{name}")


def what_it_can_do(spoke: Spoke, credentials: Credentials) -> dict[str, str]:
    s3, iam = spoke.client_as("s3", credentials), spoke.client_as("iam", credentials)
    return {
        "read the granted bucket": s3_outcome(s3, "GetObject", f"granted-{spoke.id}", "data.csv"),
        "write the granted bucket": s3_outcome(s3, "PutObject", f"granted-{spoke.id}", "up.csv"),
        "read another bucket": s3_outcome(s3, "GetObject", f"other-{spoke.id}", "data.csv"),
        "list roles": outcome(iam.list_roles),
        "create a role": outcome(
            iam.create_role, RoleName=own_role_name(), AssumeRolePolicyDocument=EC2_TRUST_POLICY
        ),
    }


def test_a_role_with_every_action_inside_the_boundary_reaches_only_the_boundarys_buckets(
    bounded_spoke: Spoke,
) -> None:
    bounded = what_it_can_do(bounded_spoke, role_with_everything(bounded_spoke, bounded=True))
    unbounded = what_it_can_do(bounded_spoke, role_with_everything(bounded_spoke, bounded=False))

    assert bounded == {
        "read the granted bucket": ALLOWED,
        "write the granted bucket": ALLOWED,
        "read another bucket": "AccessDenied",
        "list roles": "AccessDenied",
        "create a role": "AccessDenied",
    }
    # The negative control: the same role without the boundary can do all of it.
    assert set(unbounded.values()) == {ALLOWED}


# -- a boundary removed behind the broker's back ---------------------------------------------


@pytest.fixture(scope="module")
def still_broker(
    emulator: Emulator, broker_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    """The broker as broker-policy.json, whose drift sweep runs only at start."""
    database: Path = tmp_path_factory.mktemp("boundary") / "broker.db"
    process = broker_as(emulator, broker_credentials, database)
    process.extra_env["BROKER_DRIFT_SWEEP_INTERVAL_SECONDS"] = "86400"
    process.start()
    yield process
    process.stop()


def test_a_removed_boundary_is_drift_put_back_and_audited(
    still_broker: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    grant(still_broker.stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "up/")
    role = f"accessbroker-{instance_id}"
    emulator.client("iam").delete_role_permissions_boundary(RoleName=role)

    drifts = reconcile(still_broker.stub, instance_id, dry_run=False)

    assert [(d.kind, d.actual, d.repaired) for d in drifts] == [
        (pb.DRIFT_KIND_BOUNDARY, "no boundary", True)
    ]
    held = emulator.client("iam").get_role(RoleName=role)["Role"]["PermissionsBoundary"]
    assert held["PermissionsBoundaryArn"] == emulator.permissions_boundary()
    events = audit_events(still_broker.stub, instance_id)
    assert drift_kinds_in(events, "drift.detected") == ["boundary"]
    assert drift_kinds_in(events, "drift.repaired") == ["boundary"]
    assert "aws.put_boundary" in [e.action for e in events]
    assert emulator.try_as_instance(instance_id, "PutObject", buckets[0], "up/a") == ALLOWED


def test_a_grant_on_a_role_that_lost_its_boundary_puts_it_back_first(
    still_broker: BrokerProcess, emulator: Emulator, instance_id: str, buckets: tuple[str, str]
) -> None:
    """The broker's record says the role is as it left it; IAM refuses the policy on a role
    without the boundary, and the broker then reads AWS in full and puts the boundary back."""
    grant(still_broker.stub, instance_id, buckets[0], pb.ACCESS_UPLOAD, "up/")
    role = f"accessbroker-{instance_id}"
    emulator.client("iam").delete_role_permissions_boundary(RoleName=role)

    second = grant(still_broker.stub, instance_id, buckets[1], pb.ACCESS_READ, "in/").grant

    assert second.state == pb.GRANT_STATE_ACTIVE
    held = emulator.client("iam").get_role(RoleName=role)["Role"]["PermissionsBoundary"]
    assert held["PermissionsBoundaryArn"] == emulator.permissions_boundary()
    actions = [e.action for e in audit_events(still_broker.stub, instance_id)]
    last_policy = max(i for i, action in enumerate(actions) if action == "aws.put_policy")
    assert "aws.put_boundary" in actions[:last_policy]  # the boundary first, then the policy


# -- a grant the boundary would cut ------------------------------------------------------------


def test_a_grant_the_boundary_would_cut_is_refused_until_the_boundary_is_widened(
    emulator: Emulator, bounded_spoke: Spoke, tmp_path: Path
) -> None:
    """The hub broker serving the spoke reads its boundary at start: a grant on a bucket the
    boundary leaves out would be ACTIVE and useless, so it is refused; once the platform team
    widens the boundary, a SIGHUP makes the broker read it again."""
    spoke, accounts = bounded_spoke, tmp_path / "accounts.yaml"
    accounts.write_text(yaml.safe_dump({"accounts": [spoke.accounts_entry()]}))
    instance_id, other = spoke.run_instance(), f"other-{spoke.id}"
    with hub_broker(emulator, accounts, tmp_path / "broker.db") as broker:
        with pytest.raises(grpc.RpcError) as refused:
            grant(broker.stub, instance_id, other, pb.ACCESS_READ, account=spoke.name)
        inside = grant(
            broker.stub, instance_id, f"granted-{spoke.id}", pb.ACCESS_READ, "", account=spoke.name
        )
        widened = boundary_document([f"granted-{spoke.id}", other])
        spoke.client("iam").create_policy_version(
            PolicyArn=f"arn:aws:iam::{spoke.id}:policy/{BOUNDARY_NAME}",
            PolicyDocument=json.dumps(widened),
            SetAsDefault=True,
        )
        hang_up(broker)
        then = wait_for(
            lambda: _granted_or_cut(broker, instance_id, other, spoke.name),
            lambda outcome: outcome is not None,
            what="the broker to read the widened boundary",
        )

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = refused.value.details() or ""
    assert (
        f"does not allow the grant on bucket {other} (s3:ListBucket on arn:aws:s3:::{other}; "
        in details
    )
    assert f"s3:GetObject on arn:aws:s3:::{other}/*" in details
    assert inside.grant.state == pb.GRANT_STATE_ACTIVE
    assert then is not None and then.state == pb.GRANT_STATE_ACTIVE
    assert spoke.try_as_instance(instance_id, "GetObject", other, "data.csv") == ALLOWED


def _granted_or_cut(
    broker: BrokerProcess, instance_id: str, bucket: str, account: str
) -> pb.Grant | None:
    """The grant, once the broker's reading of the boundary allows it; None while it refuses."""
    try:
        return grant(broker.stub, instance_id, bucket, pb.ACCESS_READ, account=account).grant
    except grpc.RpcError as refused:
        if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return None
