"""BROKER_REQUIRE_IMDSV2 and BROKER_BIND_CREDENTIALS: the instance's policy carries the binding,
and a policy stripped of it is drift, repaired."""

from broker.domain.drift import DriftKind
from broker.domain.policy import Binding
from broker.service.commands import Reconcile
from tests.unit.service.fakes import INSTANCE, POLICY, ROLE, grant_command, world

BOUND = Binding(require_imdsv2=True, same_vpc=True)


def test_the_policy_put_on_the_role_binds_the_credentials_and_stays_bound() -> None:
    w = world(INSTANCE).with_options(binding=BOUND)
    granted = w.handle(grant_command("photos"))
    put = w.aws.roles[ROLE].policies[POLICY]
    stripped = {
        **put,
        "Statement": [{k: v for k, v in s.items() if k != "Condition"} for s in put["Statement"]],
    }
    w.aws.roles[ROLE].policies[POLICY] = stripped

    findings = w.handle(Reconcile(instance_id=INSTANCE, dry_run=False))

    assert all(s["Condition"] == BOUND.conditions for s in put["Statement"])
    assert '"ec2:RoleDelivery"' in granted.policy_document
    assert [(f.drift.kind, f.repaired) for f in findings] == [(DriftKind.POLICY, True)]
    assert w.aws.roles[ROLE].policies[POLICY] == put
