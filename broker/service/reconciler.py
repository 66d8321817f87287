"""reconcile_settling: finish every convergence that was interrupted or postponed."""

import logging

from broker.domain.audit import SYSTEM_ACTOR
from broker.domain.errors import BrokerError
from broker.service.convergence import converge_instance
from broker.service.dependencies import Dependencies

log = logging.getLogger(__name__)


def reconcile_settling(deps: Dependencies) -> list[str]:
    """Converges each instance that still has a pending or revoking grant.

    Returns the instances that could not be finished yet; their grants keep the reason, and
    the next sweep tries again.
    """
    with deps.uow() as uow:
        instances = uow.grants.settling_instances()
    unfinished = []
    for instance_id in instances:
        try:
            converge_instance(deps, instance_id, SYSTEM_ACTOR)
        except BrokerError as error:
            log.warning("could not finish %s yet: %s", instance_id, error)
            unfinished.append(instance_id)
    return unfinished
