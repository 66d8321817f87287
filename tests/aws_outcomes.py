"""What an AWS call made through boto3 comes to, for tests of authorization."""

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.sandbox.instance_view import ALLOWED


def refusal(call: Callable[..., object], **arguments: Any) -> str:
    """The AccessDenied message the call fails with (and fails the test if it succeeds)."""
    with pytest.raises(ClientError) as refused:
        call(**arguments)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied", error
    return str(error["Message"])


def outcome(call: Callable[..., object], **arguments: Any) -> str:
    """ALLOWED, or the code of the error the call fails with."""
    try:
        call(**arguments)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return ALLOWED
