"""Within a trace, each unit of work is a span: its database, whether it only read, whether it
committed; a failure inside it marks it failed. Outside a trace (a scrape counting grants, say)
no span is made."""

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import Engine

from broker.adapters.db.unit_of_work import sql_unit_of_work_factory
from tests.records import GrantMaker
from tests.spans import RecordingTracer, recording_tracer


@pytest.fixture
def traced() -> RecordingTracer:
    return recording_tracer()


def test_a_committed_transaction_is_a_span_under_the_current_one(
    engine: Engine, traced: RecordingTracer, make_grant: GrantMaker, database_kind: str
) -> None:
    units = sql_unit_of_work_factory(engine, traced.tracer)

    with traced.tracer.start_as_current_span("rpc") as parent, units() as uow:
        uow.grants.add(make_grant())
        uow.commit()

    [transaction, _] = traced.ended()
    assert transaction.parent is not None
    assert transaction.parent.span_id == parent.get_span_context().span_id
    assert (transaction.name, transaction.kind) == ("db.transaction", SpanKind.CLIENT)
    assert dict(transaction.attributes or {}) == {
        "db.system": "postgresql" if database_kind == "postgresql" else "sqlite",
        "db.read_only": False,
        "db.committed": True,
    }


def test_a_read_that_fails_is_a_failed_span(engine: Engine, traced: RecordingTracer) -> None:
    units = sql_unit_of_work_factory(engine, traced.tracer)

    with (
        traced.tracer.start_as_current_span("rpc"),
        pytest.raises(LookupError),
        units(read_only=True) as uow,
    ):
        uow.grants.get("g-none")
        raise LookupError("what the caller looked for is not there")

    [transaction, _] = traced.ended()
    assert dict(transaction.attributes or {})["db.read_only"] is True
    assert "db.committed" not in (transaction.attributes or {})
    assert transaction.status.status_code is StatusCode.ERROR


def test_outside_a_trace_no_span_is_made(engine: Engine, traced: RecordingTracer) -> None:
    units = sql_unit_of_work_factory(engine, traced.tracer)

    with units(read_only=True) as uow:
        uow.grants.count_by_state()

    assert traced.ended() == []
