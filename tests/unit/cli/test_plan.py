import os
import subprocess
import sys
from datetime import timedelta

from accessbroker.cli.plan import Plan, grant_key, live_grants, make_plan, revoke_key
from accessbroker.cli.requestfile import DesiredGrant, RequestFile
from accessbroker.models import Access, GrantState
from tests.unit.cli.factories import INSTANCE, OTHER_INSTANCE, T0, make_grant

UPLOAD = DesiredGrant(INSTANCE, "ci-artifacts", Access.UPLOAD, "builds/", timedelta(hours=8))
READ = DesiredGrant(INSTANCE, "datasets", Access.READ)


def _in_another_process(expression: str) -> str:
    """`expression` (over the names below) as a new interpreter with a hash seed of its own
    prints it: a key that hung on anything per process (hash(), id(), a random salt) would
    differ there, and a re-run of `apply` would not be recognized."""
    script = (
        "from datetime import timedelta\n"
        "from accessbroker.cli.plan import grant_key, revoke_key\n"
        "from accessbroker.cli.requestfile import DesiredGrant\n"
        "from accessbroker.models import Access\n"
        f"print({expression})\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    run = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


def test_nothing_live_means_everything_to_grant() -> None:
    plan = make_plan(RequestFile({INSTANCE: [UPLOAD, READ]}), {})
    assert plan == Plan(to_grant=[UPLOAD, READ])
    assert not plan.is_empty


def test_a_live_grant_matches_on_bucket_prefix_and_access_only() -> None:
    held = make_grant(bucket="ci-artifacts", prefix="builds/", access=Access.UPLOAD)
    plan = make_plan(RequestFile({INSTANCE: [UPLOAD]}), {INSTANCE: [held]})
    assert plan == Plan(unchanged=[held])  # ttl and reason do not matter
    assert plan.is_empty


def test_live_grants_not_in_the_file_are_revoked_and_ended_ones_ignored() -> None:
    other_prefix = make_grant("a", prefix="other/")
    other_access = make_grant("b", access=Access.READ_WRITE)
    pending = make_grant(
        "c", bucket="datasets", prefix="", access=Access.READ, state=GrantState.PENDING
    )
    ended = [
        make_grant(str(n), state=state)
        for n, state in enumerate(
            [GrantState.REVOKED, GrantState.EXPIRED, GrantState.FAILED, GrantState.REVOKING]
        )
    ]
    plan = make_plan(
        RequestFile({INSTANCE: [UPLOAD, READ]}),
        {INSTANCE: [other_prefix, *ended, other_access, pending]},
    )
    assert plan.to_grant == [UPLOAD]
    assert plan.to_revoke == [other_prefix, other_access]
    assert plan.unchanged == [pending]


def test_a_second_live_grant_of_one_scope_is_revoked_keeping_the_active_one() -> None:
    pending = make_grant("pending", state=GrantState.PENDING, created_at=T0)
    active = make_grant("active", created_at=T0 + timedelta(hours=1))
    plan = make_plan(RequestFile({INSTANCE: [UPLOAD]}), {INSTANCE: [pending, active]})
    assert plan.unchanged == [active]
    assert plan.to_revoke == [pending]


def test_an_instance_listed_without_grants_loses_them_all_and_others_are_untouched() -> None:
    mine = make_grant("mine")
    theirs = make_grant("theirs", instance_id=OTHER_INSTANCE)
    plan = make_plan(RequestFile({INSTANCE: []}), {INSTANCE: [mine], OTHER_INSTANCE: [theirs]})
    assert plan == Plan(to_revoke=[mine])


def test_live_grants_are_active_first_then_oldest_first() -> None:
    late = make_grant("late", created_at=T0 + timedelta(hours=1))
    early = make_grant("early", created_at=T0)
    pending = make_grant("pending", state=GrantState.PENDING, created_at=T0 - timedelta(hours=1))
    gone = make_grant("gone", state=GrantState.REVOKED)
    assert [g.grant_id for g in live_grants([late, pending, gone, early])] == [
        "early",
        "late",
        "pending",
    ]


def test_grant_keys_follow_the_content_and_the_generation() -> None:
    key = grant_key(UPLOAD)
    assert key == _in_another_process(
        f"grant_key(DesiredGrant({INSTANCE!r}, 'ci-artifacts', Access.UPLOAD, 'builds/',"
        " timedelta(hours=8)))"
    )
    assert key.startswith("brokerctl-") and len(key) <= 128
    different = [
        grant_key(UPLOAD, generation=1),
        grant_key(DesiredGrant(INSTANCE, "ci-artifacts", Access.UPLOAD, "builds/")),
        grant_key(
            DesiredGrant(
                INSTANCE, "ci-artifacts", Access.UPLOAD, "builds/", timedelta(hours=8), "reason"
            )
        ),
        grant_key(
            DesiredGrant(
                OTHER_INSTANCE, "ci-artifacts", Access.UPLOAD, "builds/", timedelta(hours=8)
            )
        ),
        grant_key(
            DesiredGrant(INSTANCE, "ci-artifacts", Access.READ, "builds/", timedelta(hours=8))
        ),
    ]
    assert len({key, *different}) == len(different) + 1


def test_revoke_keys_are_per_grant() -> None:
    assert revoke_key("a") == _in_another_process("revoke_key('a')") != revoke_key("b")
