"""Everything a use case needs, wired once by the composition root (broker.bootstrap)."""

from dataclasses import dataclass

from broker.service.ports import Clock, Ec2, Iam, IdGenerator, InstanceLocks, UnitOfWorkFactory


@dataclass(frozen=True)
class Dependencies:
    uow: UnitOfWorkFactory
    iam: Iam
    ec2: Ec2
    clock: Clock
    ids: IdGenerator
    locks: InstanceLocks
    role_path: str
