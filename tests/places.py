"""Where the tests' instances live unless a test says otherwise: the broker's own account, in
the one region it serves without an accounts file."""

from broker.domain.accounts import Accounts
from broker.domain.places import HOME_ACCOUNT, InstanceRef, Place

HOME_REGION = "us-east-1"
HOME = Place(HOME_ACCOUNT, HOME_REGION)
HOME_ACCOUNTS = Accounts.single(HOME_REGION)


def at_home(instance_id: str) -> InstanceRef:
    """The instance of that id in the broker's own account, in its first region."""
    return InstanceRef(HOME, instance_id)
