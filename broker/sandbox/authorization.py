"""Resource-level IAM authorization in the emulator; `Emulator.start()` installs it.

moto authorizes a request in one hook that every service's response calls before acting,
`BaseResponse._authenticate_and_authorize_normal_action(resource)`: it checks the signature,
then the caller's policies for `<service>:<Action>` on `resource` — "*" for most IAM and EC2
calls, and never iam:PassRole. `install()` overrides that hook on `BaseResponse` (moto's own
stays untouched in its mixin): for the calls `broker.sandbox.permissions` knows, every
permission AWS would check is checked, each on its real ARN; every other call (S3, STS, IAM
users, ...) goes to moto's hook as before. Signature checks and moto's count of initial
unauthenticated requests stay moto's, so an admin's allow-all policy keeps working.

Policies are evaluated by moto's evaluator (`IAMPolicy`), given each permission's context keys,
with its limits: of the condition operators it evaluates only StringEquals (others, and keys
the context lacks, are ignored), a statement whose condition fails counts as an explicit deny
where AWS would skip it, and NotResource is not understood. StringEquals on
iam:PassedToService is all the broker's policy needs.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import BaseResponse
from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult

from broker.sandbox.permissions import (
    RESOURCE_PARAMETERS,
    SCOPED_SERVICES,
    Call,
    Permission,
    required_permissions,
)


def install() -> None:
    """Makes every moto server in this process authorize as described above; idempotent."""
    BaseResponse._authenticate_and_authorize_normal_action = _authorize  # type: ignore[method-assign, assignment]


def _authorize(response: BaseResponse, resource: str = "*") -> None:
    permissions = _permissions_for(response)
    if permissions is None:
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(response, resource)
        return
    # moto builds the request object itself, from keyword arguments only: a partial carries
    # the permissions in.
    request_class = cast("type", partial(_CheckedRequest, permissions))
    response._authenticate_and_authorize_action(request_class, resource)


def _permissions_for(response: BaseResponse) -> tuple[Permission, ...] | None:
    if response.service_name not in SCOPED_SERVICES:
        return None
    params = {
        name: value
        for name in RESOURCE_PARAMETERS
        if isinstance(value := response._get_param(name), str)
    }
    call = Call(
        service=response.service_name,
        action=response._get_action(),
        account_id=response.current_account,
        region=response.region,
        params=params,
        tagged=bool(response._get_param("Tags")),
    )
    return required_permissions(call)


class _CheckedRequest(IAMRequest):
    """moto's view of a signed request, authorized for each of the given permissions."""

    def __init__(self, permissions: tuple[Permission, ...], **request: Any) -> None:
        super().__init__(**request)
        self._permissions = permissions

    def check_action_permitted(self, resource: str) -> None:
        # `resource` is moto's guess for the call's own action; each permission names its own.
        policies = [IAMPolicy(policy) for policy in self._access_key.collect_policies()]
        for permission in self._permissions:
            if not _allowed(policies, permission):
                raise AccessDeniedError(
                    user_arn=self._access_key.arn,
                    action=f"{permission.action} on resource: {permission.resource}",
                )


def _allowed(policies: list[IAMPolicy], permission: Permission) -> bool:
    """Allowed by some policy and denied by none, as IAM decides within one account."""
    results = {
        policy.is_action_permitted(
            permission.action,
            permission.resource,
            incoming_condition_values=dict(permission.context),
        )
        for policy in policies
    }
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
