"""When one grant already gives everything another asks for."""

from collections.abc import Iterable
from datetime import datetime

from broker.domain.access import Access
from broker.domain.grants import Grant, GrantScope

# What each access level includes besides itself (see the policy shapes in broker.domain.policy):
# read-write holds every action of read and of upload; read holds list's ListBucket.
_INCLUDES: dict[Access, frozenset[Access]] = {
    Access.READ_WRITE: frozenset({Access.READ, Access.UPLOAD, Access.LIST}),
    Access.READ: frozenset({Access.LIST}),
    Access.UPLOAD: frozenset(),
    Access.LIST: frozenset(),
}


def covers(broader: GrantScope, narrower: GrantScope) -> bool:
    """Whether `broader` allows every action `narrower` does, on every key it does.

    A prefix covers every longer prefix that starts with it ("" covers the whole bucket): the
    policy's resources and conditions are `prefix*` patterns.
    """
    return (
        broader.bucket == narrower.bucket
        and narrower.prefix.startswith(broader.prefix)
        and (broader.access == narrower.access or narrower.access in _INCLUDES[broader.access])
    )


def lasts_until(grant: Grant, expires_at: datetime | None) -> bool:
    """Whether the grant lasts at least until `expires_at` (None: forever)."""
    if grant.expires_at is None:
        return True
    return expires_at is not None and grant.expires_at >= expires_at


def covering_grant(
    grants: Iterable[Grant], scope: GrantScope, expires_at: datetime | None, now: datetime
) -> Grant | None:
    """The first live grant that gives all of `scope` for at least as long as asked, if any.

    A broader grant that ends sooner does not count: the request would get less time than it
    asked for, and extending the broader grant would extend more access than was asked for.
    """
    found = (
        g
        for g in grants
        if g.is_live(now) and covers(g.scope, scope) and lasts_until(g, expires_at)
    )
    return next(found, None)
