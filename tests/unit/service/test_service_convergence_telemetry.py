"""Each convergence is measured and traced, with how it ended: converged, postponed (AWS
unavailable, the deadline) or failed (refused for good)."""

import pytest

from broker.domain.errors import AwsRejected, AwsUnavailable, BrokerError
from tests.places import at_home
from tests.unit.service.fakes import INSTANCE, RecordingTelemetry, World, grant_command


def test_a_convergence_that_gets_through_is_measured_converged(w: World) -> None:
    w.handle(grant_command("photos"))
    measured = RecordingTelemetry()

    w.convergence(measured).converge(at_home(INSTANCE), "system")

    [(seconds, outcome)] = measured.took
    assert outcome == "converged" and seconds >= 0
    [span] = measured.spans
    assert span.name == "accessbroker.converge" and span.failure is None
    assert span.attributes == {
        "accessbroker.instance_id": INSTANCE,
        "accessbroker.region": "us-east-1",
        "accessbroker.outcome": "converged",
    }


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(AwsUnavailable("Throttling"), "postponed"), (AwsRejected("AccessDenied"), "failed")],
)
def test_a_convergence_that_stops_is_measured_with_why(
    w: World, error: BrokerError, outcome: str
) -> None:
    w.handle(grant_command("photos"))
    w.aws.roles.clear()  # the next convergence has a role to create again
    w.aws.fail("create_role", error, times=2)
    measured = RecordingTelemetry()

    with pytest.raises(type(error)):
        w.convergence(measured).converge(at_home(INSTANCE), "system")

    assert [o for _, o in measured.took] == [outcome]
    [span] = measured.spans
    assert span.attributes["accessbroker.outcome"] == outcome
    assert isinstance(span.failure, type(error))
