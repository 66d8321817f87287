"""The instance policy: least privilege, deterministic, size-checked.

The expected permissions are written out here from DESIGN.md's table, independently of the tables
in broker.domain.policy, so a wrong entry there fails these tests.
"""

import json
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.access import Access
from broker.domain.errors import PolicyTooLarge
from broker.domain.grants import GrantScope
from broker.domain.policy import (
    INLINE_POLICY_LIMIT,
    PolicyDocument,
    build_policy,
    check_size,
    policy_size,
    render,
)

UPLOAD_OBJECT = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
EXPECTED_OBJECT_ACTIONS = {
    Access.UPLOAD: UPLOAD_OBJECT,
    Access.READ: {"s3:GetObject"},
    Access.READ_WRITE: {"s3:GetObject", "s3:DeleteObject", *UPLOAD_OBJECT},
    Access.LIST: set(),
}
EXPECTED_BUCKET_ACTIONS = {
    Access.UPLOAD: {"s3:ListBucketMultipartUploads"},
    Access.READ: set(),
    Access.READ_WRITE: {"s3:ListBucketMultipartUploads"},
    Access.LIST: set(),
}
EXPECTED_LISTS = {Access.READ, Access.READ_WRITE, Access.LIST}
OBJECT_LEVEL = {"s3:GetObject", "s3:DeleteObject", *UPLOAD_OBJECT}
BUCKET_LEVEL = {"s3:ListBucket", "s3:ListBucketMultipartUploads"}
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
SID = re.compile(r"[A-Za-z0-9]+")

# A few fixed buckets and prefixes so that generated grants collide, overlap and merge.
buckets = st.sampled_from(["alpha", "beta.logs", "gamma-1", "d0"])
prefixes = st.one_of(
    st.sampled_from(["", "a", "a/", "ab", "data/2024/", "x$y/", "${aws:username}/", "ünï/"]),
    st.text(st.characters(codec="utf-8", exclude_characters="*?", exclude_categories=["Cc"])),
)
scopes = st.builds(GrantScope, bucket=buckets, prefix=prefixes, access=st.sampled_from(Access))
scope_lists = st.lists(scopes, max_size=8)


def scope(bucket: str, prefix: str, access: Access) -> GrantScope:
    return GrantScope(bucket=bucket, prefix=prefix, access=access)


def policy_of(*grants: GrantScope) -> PolicyDocument:
    document = build_policy(grants)
    assert document is not None
    return document


def statements(document: PolicyDocument) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = document["Statement"]
    return result


def escaped(text: str) -> str:
    return text.replace("$", "${$}")


def bucket_of(resource: str) -> str:
    return resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]


def list_condition(statement: dict[str, Any]) -> frozenset[str] | None:
    """The s3:prefix patterns a ListBucket statement is limited to; None when unconditional."""
    if "Condition" not in statement:
        return None
    assert list(statement["Condition"]) == ["StringLike"]
    assert list(statement["Condition"]["StringLike"]) == ["s3:prefix"]
    patterns = statement["Condition"]["StringLike"]["s3:prefix"]
    assert patterns, "an empty condition list would allow nothing, or everything"
    assert len(set(patterns)) == len(patterns)
    return frozenset(patterns)


def expected_grants(
    grants: list[GrantScope],
) -> tuple[set[tuple[str, str]], dict[str, frozenset[str] | None]]:
    """(action, resource) pairs without conditions, and each listable bucket's list condition."""
    pairs: set[tuple[str, str]] = set()
    listed: dict[str, set[str] | None] = {}
    for g in grants:
        for action in EXPECTED_OBJECT_ACTIONS[g.access]:
            pairs.add((action, f"arn:aws:s3:::{g.bucket}/{escaped(g.prefix)}*"))
        for action in EXPECTED_BUCKET_ACTIONS[g.access]:
            pairs.add((action, f"arn:aws:s3:::{g.bucket}"))
        if g.access in EXPECTED_LISTS:
            known = listed.setdefault(g.bucket, set())
            if g.prefix == "":
                listed[g.bucket] = None
            elif known is not None:
                known.add(escaped(g.prefix) + "*")
    conditions = {b: None if p is None else frozenset(p) for b, p in listed.items()}
    return pairs, conditions


def actual_grants(
    document: PolicyDocument,
) -> tuple[set[tuple[str, str]], dict[str, frozenset[str] | None]]:
    pairs: set[tuple[str, str]] = set()
    listed: dict[str, frozenset[str] | None] = {}
    for statement in statements(document):
        if statement["Action"] == ["s3:ListBucket"]:
            for resource in statement["Resource"]:
                assert bucket_of(resource) not in listed, "a bucket listed by two statements"
                listed[bucket_of(resource)] = list_condition(statement)
        else:
            assert "Condition" not in statement
            pairs |= {(a, r) for a in statement["Action"] for r in statement["Resource"]}
    return pairs, listed


def assert_well_formed(document: PolicyDocument) -> None:
    assert set(document) == {"Version", "Statement"}
    assert document["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in statements(document)]
    assert all(SID.fullmatch(sid) for sid in sids), sids
    assert len(set(sids)) == len(sids), sids
    for statement in statements(document):
        assert set(statement) <= STATEMENT_KEYS
        assert statement["Effect"] == "Allow"
        actions, resources = statement["Action"], statement["Resource"]
        assert isinstance(actions, list) and actions and len(set(actions)) == len(actions)
        assert isinstance(resources, list) and resources and len(set(resources)) == len(resources)
        assert not any("*" in action for action in actions), actions
        assert set(actions) <= OBJECT_LEVEL | BUCKET_LEVEL
        assert "*" not in resources
        assert all(r.startswith("arn:aws:s3:::") and bucket_of(r) for r in resources)
        if set(actions) <= OBJECT_LEVEL:
            assert all(r.count("/") >= 1 and r.endswith("*") for r in resources), statement
        else:
            # Bucket and object actions never share a statement (or a resource).
            assert set(actions) <= BUCKET_LEVEL, statement
            assert all("/" not in r and "*" not in r for r in resources), statement
        if "Condition" in statement:
            assert actions == ["s3:ListBucket"]


# --- properties --------------------------------------------------------------------------------


@given(scope_lists)
def test_grants_exactly_what_the_access_levels_allow_and_nothing_else(
    grants: list[GrantScope],
) -> None:
    document = build_policy(grants)
    if not grants:
        assert document is None
        return
    assert document is not None
    assert_well_formed(document)
    assert actual_grants(document) == expected_grants(grants)


@given(scope_lists, st.data())
def test_same_scopes_in_any_order_with_duplicates_render_the_same_bytes(
    grants: list[GrantScope], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(grants))
    duplicated = shuffled + data.draw(
        st.lists(st.sampled_from(grants), max_size=4) if grants else st.just([])
    )
    first, second = build_policy(grants), build_policy(iter(duplicated))
    if first is None:
        assert second is None
        return
    assert second is not None
    assert render(first).encode() == render(second).encode()
    assert first == second


@given(
    st.lists(st.builds(GrantScope, bucket=buckets, prefix=prefixes, access=st.just(Access.READ)))
)
def test_read_only_grants_never_allow_writing_or_deleting(grants: list[GrantScope]) -> None:
    document = build_policy(grants)
    actions = {a for s in statements(document) for a in s["Action"]} if document else set()
    assert not actions & {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


@given(scope_lists)
def test_rendering_round_trips_and_is_compact(grants: list[GrantScope]) -> None:
    document = build_policy(grants)
    if document is None:
        return
    text = render(document)
    assert json.loads(text) == document
    assert render(json.loads(text)) == text


# --- examples of each access level --------------------------------------------------------------


def test_nothing_to_grant_is_no_policy() -> None:
    assert build_policy([]) is None
    assert build_policy(iter(())) is None


def test_upload() -> None:
    document = policy_of(scope("alpha", "in/", Access.UPLOAD))
    assert_well_formed(document)
    by_resource = {tuple(s["Resource"]): s for s in statements(document)}
    assert set(by_resource) == {("arn:aws:s3:::alpha/in/*",), ("arn:aws:s3:::alpha",)}
    assert sorted(by_resource[("arn:aws:s3:::alpha/in/*",)]["Action"]) == sorted(UPLOAD_OBJECT)
    assert by_resource[("arn:aws:s3:::alpha",)]["Action"] == ["s3:ListBucketMultipartUploads"]
    assert "Condition" not in by_resource[("arn:aws:s3:::alpha",)]


def test_read() -> None:
    document = policy_of(scope("alpha", "reports/", Access.READ))
    assert_well_formed(document)
    assert sorted(
        (s["Action"], s["Resource"], s.get("Condition")) for s in statements(document)
    ) == [
        (["s3:GetObject"], ["arn:aws:s3:::alpha/reports/*"], None),
        (
            ["s3:ListBucket"],
            ["arn:aws:s3:::alpha"],
            {"StringLike": {"s3:prefix": ["reports/*"]}},
        ),
    ]


def test_read_write() -> None:
    document = policy_of(scope("alpha", "p/", Access.READ_WRITE))
    pairs, listed = actual_grants(document)
    assert pairs == {
        (a, "arn:aws:s3:::alpha/p/*") for a in EXPECTED_OBJECT_ACTIONS[Access.READ_WRITE]
    } | {("s3:ListBucketMultipartUploads", "arn:aws:s3:::alpha")}
    assert listed == {"alpha": frozenset({"p/*"})}


def test_list_is_only_a_conditioned_list_bucket() -> None:
    document = policy_of(scope("alpha", "p/", Access.LIST))
    assert [(s["Action"], s["Resource"], s["Condition"]) for s in statements(document)] == [
        (["s3:ListBucket"], ["arn:aws:s3:::alpha"], {"StringLike": {"s3:prefix": ["p/*"]}})
    ]


@pytest.mark.parametrize("access", [Access.READ, Access.LIST, Access.READ_WRITE])
def test_an_empty_prefix_lists_the_whole_bucket_without_condition(access: Access) -> None:
    document = policy_of(scope("alpha", "", access), scope("alpha", "x/", Access.LIST))
    lists = [s for s in statements(document) if s["Action"] == ["s3:ListBucket"]]
    assert lists == [lists[0]] and "Condition" not in lists[0]
    assert lists[0]["Resource"] == ["arn:aws:s3:::alpha"]


def test_empty_prefix_objects_are_the_whole_bucket() -> None:
    document = policy_of(scope("alpha", "", Access.READ))
    assert ["arn:aws:s3:::alpha/*"] in [s["Resource"] for s in statements(document)]


def test_list_conditions_are_never_shared_across_buckets_with_different_prefixes() -> None:
    document = policy_of(
        scope("alpha", "a/", Access.READ),
        scope("beta", "b/", Access.READ),
        scope("gamma", "a/", Access.LIST),
    )
    _, listed = actual_grants(document)
    assert listed == {
        "alpha": frozenset({"a/*"}),
        "beta": frozenset({"b/*"}),
        "gamma": frozenset({"a/*"}),
    }
    lists = [s for s in statements(document) if s["Action"] == ["s3:ListBucket"]]
    # Buckets with the same condition may share a statement; different ones never do.
    assert sorted(len(s["Resource"]) for s in lists) == [1, 2]


def test_same_actions_merge_their_resources() -> None:
    document = policy_of(scope("alpha", "a/", Access.UPLOAD), scope("beta", "b/", Access.UPLOAD))
    objects = [s for s in statements(document) if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in objects] == [["arn:aws:s3:::alpha/a/*", "arn:aws:s3:::beta/b/*"]]
    multipart = [s for s in statements(document) if "s3:ListBucketMultipartUploads" in s["Action"]]
    assert [s["Resource"] for s in multipart] == [["arn:aws:s3:::alpha", "arn:aws:s3:::beta"]]


def test_two_levels_on_one_prefix_union_their_actions() -> None:
    document = policy_of(scope("alpha", "p/", Access.READ), scope("alpha", "p/", Access.UPLOAD))
    pairs, _ = actual_grants(document)
    assert {a for a, r in pairs if r == "arn:aws:s3:::alpha/p/*"} == {
        "s3:GetObject",
        *UPLOAD_OBJECT,
    }


@pytest.mark.parametrize(
    ("prefix", "resource", "pattern"),
    [
        ("a$b/", "arn:aws:s3:::alpha/a${$}b/*", "a${$}b/*"),
        ("${aws:username}/", "arn:aws:s3:::alpha/${$}{aws:username}/*", "${$}{aws:username}/*"),
        ("$$", "arn:aws:s3:::alpha/${$}${$}*", "${$}${$}*"),
    ],
)
def test_dollar_is_escaped_so_iam_reads_no_policy_variable(
    prefix: str, resource: str, pattern: str
) -> None:
    document = policy_of(scope("alpha", prefix, Access.READ))
    resources = {r for s in statements(document) for r in s["Resource"]}
    assert resource in resources
    _, listed = actual_grants(document)
    assert listed == {"alpha": frozenset({pattern})}


def test_sids_are_stable_across_unrelated_grants() -> None:
    alone = policy_of(scope("alpha", "a/", Access.UPLOAD))
    more = policy_of(scope("alpha", "a/", Access.UPLOAD), scope("beta", "b/", Access.LIST))
    assert {s["Sid"] for s in statements(alone)} <= {s["Sid"] for s in statements(more)}


# --- size ---------------------------------------------------------------------------------------


def document_of_size(size: int) -> PolicyDocument:
    """A document whose compact JSON is exactly `size` characters."""
    empty: PolicyDocument = {"Version": "2012-10-17", "Statement": [{"Sid": ""}]}
    padding = size - len(render(empty))
    assert padding >= 0
    return {"Version": "2012-10-17", "Statement": [{"Sid": "x" * padding}]}


def test_policy_size_counts_compact_characters() -> None:
    assert policy_size(document_of_size(500)) == 500
    assert policy_size({"a": "b c"}) == len('{"a":"bc"}')


def test_limit_is_iams() -> None:
    assert INLINE_POLICY_LIMIT == 10_240


def test_size_at_the_limit_passes() -> None:
    check_size(document_of_size(INLINE_POLICY_LIMIT))


def test_size_one_over_the_limit_is_refused() -> None:
    with pytest.raises(PolicyTooLarge) as raised:
        check_size(document_of_size(INLINE_POLICY_LIMIT + 1))
    assert raised.value.size == INLINE_POLICY_LIMIT + 1
    assert raised.value.limit == INLINE_POLICY_LIMIT


def test_no_document_has_no_size_problem() -> None:
    check_size(None)


@given(
    st.lists(
        st.text(st.sampled_from("ab \t\n"), max_size=3000),
        min_size=1,
        max_size=6,
    )
)
def test_size_check_fails_exactly_over_the_non_whitespace_limit(texts: list[str]) -> None:
    document: PolicyDocument = {"Version": "2012-10-17", "Statement": [{"Sid": t} for t in texts]}
    compact = json.dumps(document, separators=(",", ":"))
    # JSON escapes \t and \n inside strings as two visible characters each.
    non_whitespace = len(compact) - compact.count(" ")
    assert policy_size(document) == non_whitespace
    if non_whitespace > INLINE_POLICY_LIMIT:
        with pytest.raises(PolicyTooLarge):
            check_size(document)
    else:
        check_size(document)


def test_many_grants_overflow_the_limit() -> None:
    grants = [scope("alpha", f"tenant-{n:05d}/", Access.READ_WRITE) for n in range(300)]
    document = policy_of(*grants)
    assert policy_size(document) > INLINE_POLICY_LIMIT
    with pytest.raises(PolicyTooLarge):
        check_size(document)


def test_statement_counts_stay_small_when_grants_merge() -> None:
    grants = [scope(b, f"p{n}/", Access.UPLOAD) for b in ("alpha", "beta") for n in range(20)]
    document = policy_of(*grants)
    kinds = Counter(tuple(s["Action"]) for s in statements(document))
    assert len(kinds) == 2 and set(kinds.values()) == {1}
