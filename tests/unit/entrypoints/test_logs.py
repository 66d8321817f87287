"""The log's two formats: a JSON object a line, or a plain line; both carry the call's context,
which note() adds to from anywhere inside the call, even in a copied context."""

import contextvars
import json
import logging

from broker.entrypoints.logs import JsonFormatter, TextFormatter, call_context, note


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("broker.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_carries_the_call_and_the_extra_fields() -> None:
    with call_context(request_id="r-1", grpc_method="/s/M"):
        # As authentication does: the rest of the call runs in a copy of the context.
        contextvars.copy_context().run(note, identity="svc-ci", grant_id="")
        line = json.loads(JsonFormatter().format(record("hello %s", duration_ms=1.5)))

    assert line["message"] == "hello %s"
    assert (line["level"], line["logger"]) == ("WARNING", "broker.test")
    assert (line["request_id"], line["grpc_method"], line["identity"]) == ("r-1", "/s/M", "svc-ci")
    assert "grant_id" not in line  # empty values are left out
    assert line["duration_ms"] == 1.5 and line["time"].endswith("+00:00")


def test_outside_a_call_lines_carry_no_context_and_note_does_nothing() -> None:
    note(identity="nobody")

    line = json.loads(JsonFormatter().format(record("sweeping")))
    text = TextFormatter().format(record("sweeping"))

    assert "identity" not in line and "request_id" not in line
    assert text.endswith("WARNING broker.test: sweeping")


def test_a_text_line_names_the_context_after_the_message() -> None:
    with call_context(request_id="r-2", grpc_method="/s/M"):
        note(instance_id="i-0123456789abcdef0")
        text = TextFormatter().format(record("granted"))

    context = "request_id=r-2 grpc_method=/s/M instance_id=i-0123456789abcdef0"
    assert text.endswith(f"WARNING broker.test: granted [{context}]")
