"""The Ec2 port over boto3: instance lookup and instance profile associations."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from broker.adapters.aws.calls import AwsAdapter, MaybeDone, Paging
from broker.adapters.aws.errors import error_code, error_message
from broker.adapters.aws.retry import Propagation
from broker.domain.convergence import AssociationInfo
from broker.domain.errors import InstanceNotFound
from broker.service.ports import InstanceInfo, InstancesSeen

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client  # noqa: F401 (BotoEc2's type argument)
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        IamInstanceProfileAssociationTypeDef,
        InstanceTypeDef,
    )

_GONE_STATES = frozenset({"shutting-down", "terminated"})
# EC2 takes up to 200 values in one filter, and up to 1,000 results in one page.
_FILTER_VALUES, _PAGE = 200, 1000
# Associations that hold or are taking hold; EC2 also lists those being or lately disassociated.
_CURRENT: FilterTypeDef = {"Name": "state", "Values": ["associating", "associated"]}


class BotoEc2(AwsAdapter["EC2Client"]):
    # EC2's answers for an instance id or association it does not know.
    MISSING = frozenset(
        {
            "InvalidInstanceID.NotFound",
            "InvalidInstanceID.Malformed",
            "InvalidAssociationID.NotFound",
        }
    )
    SERVICE = "ec2"
    PAGING = Paging(token="NextToken")

    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        for instance in self._described(instance_id):
            if instance["State"]["Name"] not in _GONE_STATES:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                profile_arn = instance.get("IamInstanceProfile", {}).get("Arn", "")
                return InstanceInfo(instance_id, tags, profile_arn)
        return None

    def is_terminated(self, instance_id: str) -> bool:
        described = self._described(instance_id)
        return bool(described) and all(i["State"]["Name"] in _GONE_STATES for i in described)

    def _described(self, instance_id: str) -> list[InstanceTypeDef]:
        """The instance as EC2 describes it; [] when EC2 does not know the id."""
        response = self._aws.call(
            "DescribeInstances", InstanceIds=[instance_id], none_if_missing=True
        )
        if response is None:
            return []
        return [i for r in response["Reservations"] for i in r["Instances"]]

    def get_association(self, instance_id: str) -> AssociationInfo | None:
        response = self._aws.call(
            "DescribeIamInstanceProfileAssociations",
            Filters=[{"Name": "instance-id", "Values": [instance_id]}, _CURRENT],
        )
        associations = response["IamInstanceProfileAssociations"]
        return _association_info(associations[0]) if associations else None

    def associate(self, instance_id: str, profile_name: str) -> AssociationInfo:
        try:
            response = self._aws.call(
                "AssociateIamInstanceProfile",
                InstanceId=instance_id,
                IamInstanceProfile={"Name": profile_name},
                none_if_missing=True,
                propagation=Propagation(
                    _is_propagation_error,
                    f"IAM did not propagate instance profile {profile_name} to EC2",
                ),
                # A concurrent or earlier, interrupted call may have associated already.
                maybe_done={"IncorrectState"},
            )
        except MaybeDone as refused:
            return self._existing_association(refused, instance_id, profile_name)
        if response is None:  # EC2 does not know the instance
            raise InstanceNotFound(instance_id)
        return _association_info(response["IamInstanceProfileAssociation"])

    def disassociate(self, association_id: str) -> None:
        self._aws.call(
            "DisassociateIamInstanceProfile", AssociationId=association_id, none_if_missing=True
        )

    def instances_holding(self, profile_arn: str) -> set[str]:
        # EC2 cannot filter associations by profile: the region's current ones are read.
        associations = self._aws.paginate(
            "DescribeIamInstanceProfileAssociations",
            "IamInstanceProfileAssociations",
            Filters=[_CURRENT],
        )
        return {
            a["InstanceId"] for a in associations if a["IamInstanceProfile"]["Arn"] == profile_arn
        }

    def describe_many(self, instance_ids: Collection[str]) -> InstancesSeen:
        existing: set[str] = set()
        gone: set[str] = set()
        associations: dict[str, AssociationInfo] = {}
        for batch in _batches(sorted(set(instance_ids))):
            # A filter, not InstanceIds: an id EC2 does not know is left out, not an error.
            by_id: FilterTypeDef = {"Name": "instance-id", "Values": batch}
            for instance in self._instances_matching(by_id):
                gone_now = instance["State"]["Name"] in _GONE_STATES
                (gone if gone_now else existing).add(instance["InstanceId"])
            listed = self._aws.paginate(
                "DescribeIamInstanceProfileAssociations",
                "IamInstanceProfileAssociations",
                Filters=[by_id, _CURRENT],
                MaxResults=_PAGE,
            )
            associations.update((a["InstanceId"], _association_info(a)) for a in listed)
        # An id may show both ways (a terminated instance and a new one): it exists.
        return InstancesSeen(frozenset(existing), frozenset(gone - existing), associations)

    def _instances_matching(self, where: FilterTypeDef) -> list[InstanceTypeDef]:
        reservations = self._aws.paginate(
            "DescribeInstances", "Reservations", Filters=[where], MaxResults=_PAGE
        )
        return [instance for r in reservations for instance in r["Instances"]]

    def _existing_association(
        self, refused: MaybeDone, instance_id: str, profile_name: str
    ) -> AssociationInfo:
        """The instance's association with this very profile, when that is why EC2 refused."""
        if refused.code == "IncorrectState" and "existing association" in refused.message:
            current = self.get_association(instance_id)
            if current is not None and current.profile_arn.endswith(f"/{profile_name}"):
                return current
        raise refused.refusal() from refused.error


def _batches(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _FILTER_VALUES):
        yield ids[start : start + _FILTER_VALUES]


def _is_propagation_error(error: BaseException) -> bool:
    """EC2 does not yet see an instance profile (or its role) that IAM has just created."""
    if not isinstance(error, ClientError):
        return False
    code, message = error_code(error), error_message(error)
    return (
        (code == "InvalidParameterValue" and "Invalid IAM Instance Profile" in message)
        or "has no associated IAM Roles" in message
        # moto answers a profile it does not know with IAM's NoSuchEntity.
        or code == "NoSuchEntity"
    )


def _association_info(association: IamInstanceProfileAssociationTypeDef) -> AssociationInfo:
    return AssociationInfo(
        association_id=association["AssociationId"],
        instance_id=association["InstanceId"],
        profile_arn=association["IamInstanceProfile"]["Arn"],
    )
