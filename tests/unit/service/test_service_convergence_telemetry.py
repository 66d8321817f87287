"""Each convergence is measured, with how it ended: converged, postponed (AWS unavailable, the
deadline) or failed (refused for good)."""

from dataclasses import dataclass, field

import pytest

from broker.domain.errors import AwsRejected, AwsUnavailable, BrokerError
from tests.unit.service.fakes import INSTANCE, World, grant_command


@dataclass
class Measured:
    took: list[tuple[float, str]] = field(default_factory=list)

    def convergence_took(self, seconds: float, outcome: str) -> None:
        self.took.append((seconds, outcome))

    def authorization_decided(self, command: str, *, allowed: bool) -> None:
        raise AssertionError("convergence decides no authorization")


def test_a_convergence_that_gets_through_is_measured_converged(w: World) -> None:
    w.handle(grant_command("photos"))
    measured = Measured()

    w.convergence(measured).converge(INSTANCE, "system")

    [(seconds, outcome)] = measured.took
    assert outcome == "converged" and seconds >= 0


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
    measured = Measured()

    with pytest.raises(type(error)):
        w.convergence(measured).converge(INSTANCE, "system")

    assert [o for _, o in measured.took] == [outcome]
