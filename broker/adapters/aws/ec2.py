"""The Ec2 port over boto3: instance lookup and instance profile associations."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from broker.adapters.aws.errors import error_code, error_message, translated
from broker.adapters.aws.retry import Propagation, RetryingAdapter
from broker.domain.convergence import AssociationInfo
from broker.domain.errors import InstanceNotFound
from broker.service.ports import InstanceInfo

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_ec2.type_defs import (
        AssociateIamInstanceProfileResultTypeDef,
        DescribeIamInstanceProfileAssociationsResultTypeDef,
        FilterTypeDef,
        IamInstanceProfileAssociationTypeDef,
        InstanceTypeDef,
    )

_UNKNOWN_INSTANCE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
_GONE_STATES = frozenset({"shutting-down", "terminated"})
_CURRENT_ASSOCIATION_STATES = ["associating", "associated"]


class BotoEc2(RetryingAdapter["EC2Client"]):
    _client: EC2Client

    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        for instance in self._described(instance_id):
            if instance["State"]["Name"] not in _GONE_STATES:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                return InstanceInfo(instance_id, tags)
        return None

    def is_terminated(self, instance_id: str) -> bool:
        described = self._described(instance_id)
        return bool(described) and all(i["State"]["Name"] in _GONE_STATES for i in described)

    def _described(self, instance_id: str) -> list[InstanceTypeDef]:
        """The instance as EC2 describes it; [] when EC2 does not know the id."""
        with translated("DescribeInstances"):
            try:
                response = self._retry.call(
                    "DescribeInstances",
                    lambda: self._client.describe_instances(InstanceIds=[instance_id]),
                )
            except ClientError as error:
                if error_code(error) in _UNKNOWN_INSTANCE_CODES:
                    return []
                raise
        return [i for r in response["Reservations"] for i in r["Instances"]]

    def get_association(self, instance_id: str) -> AssociationInfo | None:
        with translated("DescribeIamInstanceProfileAssociations"):
            response = self._retry.call(
                "DescribeIamInstanceProfileAssociations",
                lambda: self._client.describe_iam_instance_profile_associations(
                    Filters=[
                        {"Name": "instance-id", "Values": [instance_id]},
                        {"Name": "state", "Values": _CURRENT_ASSOCIATION_STATES},
                    ]
                ),
            )
        associations = response["IamInstanceProfileAssociations"]
        return _association_info(associations[0]) if associations else None

    def associate(self, instance_id: str, profile_name: str) -> AssociationInfo:
        with translated("AssociateIamInstanceProfile"):
            try:
                response = self._associate_once_visible(instance_id, profile_name)
            except ClientError as error:
                if error_code(error) in _UNKNOWN_INSTANCE_CODES:
                    raise InstanceNotFound(instance_id) from error
                existing = self._existing_association(error, instance_id, profile_name)
                if existing is None:
                    raise
                return existing
        return _association_info(response["IamInstanceProfileAssociation"])

    def disassociate(self, association_id: str) -> None:
        with translated("DisassociateIamInstanceProfile"):
            try:
                self._retry.call(
                    "DisassociateIamInstanceProfile",
                    lambda: self._client.disassociate_iam_instance_profile(
                        AssociationId=association_id
                    ),
                )
            except ClientError as error:
                if error_code(error) != "InvalidAssociationID.NotFound":
                    raise

    def instances_holding(self, profile_arn: str) -> set[str]:
        operation = "DescribeIamInstanceProfileAssociations"
        found: set[str] = set()
        token = ""
        with translated(operation):
            while True:
                page = self._retry.call(operation, partial(self._current_associations, token))
                found |= {
                    a["InstanceId"]
                    for a in page["IamInstanceProfileAssociations"]
                    if a["IamInstanceProfile"]["Arn"] == profile_arn
                }
                token = page.get("NextToken", "")
                if not token:
                    return found

    def _current_associations(
        self, token: str
    ) -> DescribeIamInstanceProfileAssociationsResultTypeDef:
        """A page of the region's current associations; EC2 cannot filter them by profile."""
        current: list[FilterTypeDef] = [{"Name": "state", "Values": _CURRENT_ASSOCIATION_STATES}]
        if token:
            return self._client.describe_iam_instance_profile_associations(
                Filters=current, NextToken=token
            )
        return self._client.describe_iam_instance_profile_associations(Filters=current)

    def _associate_once_visible(
        self, instance_id: str, profile_name: str
    ) -> AssociateIamInstanceProfileResultTypeDef:
        return self._retry.call(
            "AssociateIamInstanceProfile",
            lambda: self._client.associate_iam_instance_profile(
                InstanceId=instance_id, IamInstanceProfile={"Name": profile_name}
            ),
            Propagation(
                _is_propagation_error,
                f"IAM did not propagate instance profile {profile_name} to EC2",
            ),
        )

    def _existing_association(
        self, error: ClientError, instance_id: str, profile_name: str
    ) -> AssociationInfo | None:
        """The instance's association with this very profile, when that is why EC2 refused."""
        if not _is_existing_association(error):
            return None
        current = self.get_association(instance_id)
        if current is None or not current.profile_arn.endswith(f"/{profile_name}"):
            return None
        return current


def _is_existing_association(error: ClientError) -> bool:
    # A concurrent or earlier, interrupted call may have associated already.
    return error_code(error) == "IncorrectState" and "existing association" in error_message(error)


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
