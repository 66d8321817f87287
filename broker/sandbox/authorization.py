"""Resource-level IAM authorization and permissions boundaries in the emulator;
`Emulator.start()` installs them.

moto authorizes a request in one hook that every service's response calls before acting,
`BaseResponse._authenticate_and_authorize_normal_action(resource)`: it checks the signature,
then the caller's policies for `<service>:<Action>` on `resource` — "*" for most IAM and EC2
calls, and never iam:PassRole. S3 has a hook of its own. Both end in one method,
`IAMRequestBase.check_action_permitted(resource)`. `install()` changes two things, process-wide:

- It overrides the normal hook on `BaseResponse` (moto's own stays untouched in its mixin): for
  the calls `broker.sandbox.permissions` knows, every permission AWS would check is checked, each
  on its real ARN with its context keys, by `broker.sandbox.policy_evaluation`: the caller's
  identity policies and its permissions boundary. Every other call (S3, STS, IAM users and
  listings, ...) goes to moto's hook as before.
- It wraps `IAMRequestBase.check_action_permitted`: once moto's own check has passed, the
  caller's permissions boundary must also allow the action on the resource moto checked
  (sts:GetCallerIdentity stays always allowed, as moto has it). Wrapping the one method every
  request moto authorizes itself goes through covers S3, STS and IAM at once, and leaves moto's
  signature checks, its trust-policy check on sts:AssumeRole and its error formats (S3's
  included) as they are; the checked calls' own request class overrides the method and applies
  the boundary itself.

Signature checks and moto's count of initial unauthenticated requests stay moto's, so an
admin's allow-all policy keeps working.

The caller's boundary is the PermissionsBoundary of the role an assumed-role key belongs to,
read in moto's IAM backend of the caller's account: the default version of that managed policy.
IAM users have none: moto 5.2 cannot give a user one (CreateUser ignores PermissionsBoundary,
PutUserPermissionsBoundary is not implemented).

What is evaluated how:
- the calls `broker.sandbox.permissions` knows: identity policies and boundary alike by
  `broker.sandbox.policy_evaluation`, with the context keys that module gives (iam:PassedToService,
  iam:PermissionsBoundary, iam:ResourceTag/..., aws:ResourceTag/...);
- every other call: its identity policies by moto's evaluator (`IAMPolicy`), with its limits —
  of the condition operators only StringEquals is evaluated, keys the request lacks are
  ignored, a failed condition counts as an explicit deny and NotResource is not understood —
  and the boundary by ours, on moto's action and resource but with no context keys: its
  conditions see every key as absent.
Where ours evaluates, a statement that applies to the request but uses what it cannot evaluate
(another condition operator, a policy variable) fails the request with a 501
EmulatorLimitation error naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, NoReturn, cast
from xml.sax.saxutils import escape

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import BaseResponse
from moto.iam.access_control import (
    AssumedRoleAccessKey,
    IAMRequest,
    IAMRequestBase,
    IAMUserAccessKey,
    S3IAMRequest,
)
from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend, Policy
from werkzeug.exceptions import HTTPException

from broker.sandbox.permissions import (
    REQUEST_PARAMETERS,
    SCOPED_SERVICES,
    Call,
    Permission,
    required_permissions,
)
from broker.sandbox.policy_evaluation import (
    Decision,
    Document,
    Request,
    UnsupportedPolicyElement,
    decide,
    decide_boundary,
)

# moto's check, before `install()` wraps it; taken once, at import, so installing twice
# cannot wrap the wrapper.
_MOTOS_CHECK = IAMRequestBase.check_action_permitted
# moto allows it whatever the policies say, as AWS does.
_ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
# A boundary naming no existing policy allows nothing (see `_boundary_document`).
_NOTHING_ALLOWED: Document = {"Version": "2012-10-17", "Statement": []}


def install() -> None:
    """Makes every moto server in this process authorize as described above; idempotent."""
    BaseResponse._authenticate_and_authorize_normal_action = _authorize  # type: ignore[method-assign, assignment]
    IAMRequestBase.check_action_permitted = _check_within_boundary  # type: ignore[method-assign, assignment]


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
        for name in REQUEST_PARAMETERS
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
        identity = [_document(policy) for policy in self._access_key.collect_policies()]
        boundary = _boundary_of(self._access_key)
        # The global key every request carries, for policy variables such as the broker's
        # ${aws:PrincipalAccount}.
        principal = {"aws:PrincipalAccount": self._access_key.account_id}
        for permission in self._permissions:
            context = {**permission.context, **principal}
            request = Request(permission.action, permission.resource, context)
            with _limitations_said(self):
                decision = decide(request, identity, boundary)
            if decision is not Decision.ALLOWED:
                _refuse(self, permission, decision)


def _check_within_boundary(request: IAMRequestBase, resource: str) -> None:
    """moto's own check, then the caller's permissions boundary on the same action and resource."""
    _MOTOS_CHECK(request, resource)
    action = request._action
    boundary = None if action in _ALWAYS_ALLOWED else _boundary_of(request._access_key)
    if boundary is None:
        return
    with _limitations_said(request):
        decision = decide_boundary(Request(action, resource), boundary)
    if decision is not Decision.ALLOWED:
        _refuse(request, Permission(action, resource), decision)


def _document(policy: str | dict[str, str] | Policy) -> Document:
    """The text of one of the policies moto collects for a caller: an inline role policy is its
    text, an inline user or group policy a dict holding it, an attached one a managed policy."""
    if isinstance(policy, Policy):
        return _default_version(policy)
    if isinstance(policy, str):
        return policy
    return policy["policy_document"]


def _default_version(policy: Policy) -> Document:
    return next(version.document for version in policy.versions if version.is_default)


def _boundary_of(access_key: IAMUserAccessKey | AssumedRoleAccessKey) -> Document | None:
    """The caller's permissions boundary; None without one (always, for IAM users in moto)."""
    if not isinstance(access_key, AssumedRoleAccessKey):
        return None
    try:
        role = access_key.backend.get_role(access_key._owner_role_name)
    except NotFoundException:
        return _NOTHING_ALLOWED  # a deleted role's sessions are refused everything
    if not role.permissions_boundary_arn:
        return None
    return _boundary_document(access_key.backend, role.permissions_boundary_arn)


def _boundary_document(backend: IAMBackend, policy_arn: str) -> Document:
    try:
        return _default_version(backend.get_policy(policy_arn))
    except NotFoundException:
        # AWS refuses to set a boundary that names no existing managed policy. moto checks only
        # the ARN's form, lets a policy in use as a boundary be deleted, and loads AWS-managed
        # policies only when MOTO_IAM_LOAD_MANAGED_POLICIES says so: a boundary that cannot be
        # read allows nothing, the safe reading.
        return _NOTHING_ALLOWED


@contextmanager
def _limitations_said(request: IAMRequestBase) -> Iterator[None]:
    """What the evaluator cannot evaluate fails the request, with an error naming it."""
    try:
        yield
    except UnsupportedPolicyElement as error:
        raise _EmulatorLimitation(str(error), s3=isinstance(request, S3IAMRequest)) from error


_REASONS = {
    Decision.DENIED_BY_IDENTITY: "with an explicit deny in an identity-based policy",
    Decision.DENIED_BY_BOUNDARY: "with an explicit deny in a permissions boundary",
    Decision.NOT_ALLOWED_BY_IDENTITY: "because no identity-based policy allows the {} action",
    Decision.NOT_ALLOWED_BY_BOUNDARY: "because no permissions boundary allows the {} action",
}


def _refuse(request: IAMRequestBase, permission: Permission, decision: Decision) -> NoReturn:
    """Access denied, with AWS's wording of the reason where the error format has room for it."""
    if isinstance(request, S3IAMRequest):
        request._raise_access_denied()  # raises, in S3's format, which names no action
    reason = _REASONS[decision].format(permission.action)
    raise AccessDeniedError(
        user_arn=request._access_key.arn,
        action=f"{permission.action} on resource: {permission.resource} {reason}",
    )


class _EmulatorLimitation(HTTPException):
    """A policy the emulator cannot evaluate, said to the caller rather than guessed at: a 501,
    which SDKs do not retry, in the error format the service's clients read."""

    code = 501

    def __init__(self, message: str, *, s3: bool) -> None:
        error = (
            f"<Error><Code>EmulatorLimitation</Code><Message>{escape(message)}</Message></Error>"
        )
        # S3's errors are an Error element; the query protocols' (IAM, STS, EC2) an ErrorResponse
        # holding Errors.
        super().__init__(
            error if s3 else f"<ErrorResponse><Errors>{error}</Errors></ErrorResponse>"
        )

    def get_body(self, *args: object, **kwargs: object) -> str:
        return self.description or ""

    def get_headers(self, *args: object, **kwargs: object) -> list[tuple[str, str]]:
        return [("Content-Type", "text/xml")]
