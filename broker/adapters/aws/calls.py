"""The one way the adapters call AWS: an action named once, e.g. "GetRole", and its parameters.

Every call is made by AwsCalls: it runs the retry policy (retry.py), maps "missing" to None
where the call site says that is fine, and translates any other botocore failure into the
broker's domain errors exactly once (errors.py). The answer is boto3's response: a mapping of
untyped values, which the adapters turn into typed domain objects right away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Tracer

from broker.adapters.aws.errors import (
    CredentialsUnavailable,
    error_code,
    error_message,
    translate,
)
from broker.adapters.aws.rate import WriteRate
from broker.adapters.aws.retry import AwsRetry, Propagation, RetryBudgets, RetryCounter
from broker.adapters.aws.tally import CallTally, outcome_of
from broker.domain.errors import AwsRejected, AwsUnavailable

Answer = Mapping[str, Any]


@dataclass(frozen=True)
class Paging:
    """How a service's listings continue: the parameter that carries the position (the answer
    gives the next one under the same name) and the flag, if any, that says more pages follow."""

    token: str
    more: str = ""

    def after(self, page: Answer) -> dict[str, str]:
        """The parameters that ask for the page after `page`; {} when it was the last."""
        more = page.get(self.more) if self.more else True
        token = page.get(self.token, "") if more else ""
        return {self.token: token} if token else {}


class MaybeDone(Exception):
    """AWS refused with a code the call site named in `maybe_done`: the work may be done already
    (e.g. EntityAlreadyExists from a create whose first answer was lost). The call site checks,
    and raises refusal() when it is not."""

    def __init__(self, action: str, error: ClientError) -> None:
        super().__init__(f"AWS {action}: {error_code(error)}")
        self.action, self.error = action, error
        self.code, self.message = error_code(error), error_message(error)

    def refusal(self) -> AwsUnavailable | AwsRejected:
        return translate(self.action, self.error)


class AwsCalls:
    """Calls one boto3 client's actions under one retry policy."""

    def __init__(
        self,
        client: object,
        retry: AwsRetry,
        *,
        missing: Collection[str],
        paging: Paging,
        writes: WriteRate | None = None,
        tally: CallTally | None = None,
        service: str = "",
        tracer: Tracer | None = None,
        account: str = "",
    ) -> None:
        # missing: the error codes that mean what a call reads or deletes does not exist.
        self._client, self._retry, self._missing, self._paging = client, retry, missing, paging
        # Every attempt of a write, retries included, takes a token first (None: no budget).
        self._writes = writes
        # Every attempt is counted there, by this service's name, with its outcome.
        self._tally, self._service = tally, service
        # Each call (its retries included) is a span, a child of the one current when it is made.
        self._tracer = tracer or NoOpTracer()
        # The account the client acts in, as AwsUnavailable names it (e.g. "prod (222222222222)");
        # "" for the broker's own account, whose errors name none.
        self._account = account

    @overload
    def call(
        self,
        action: str,
        /,
        *,
        none_if_missing: Literal[False] = False,
        propagation: Propagation | None = None,
        maybe_done: Collection[str] = (),
        **params: Any,
    ) -> Answer: ...
    @overload
    def call(
        self,
        action: str,
        /,
        *,
        none_if_missing: Literal[True],
        propagation: Propagation | None = None,
        maybe_done: Collection[str] = (),
        **params: Any,
    ) -> Answer | None: ...
    def call(
        self,
        action: str,
        /,
        *,
        none_if_missing: bool = False,
        propagation: Propagation | None = None,
        maybe_done: Collection[str] = (),
        **params: Any,
    ) -> Answer | None:
        """AWS's answer to `action` (made as client.get_role(**params) for "GetRole").

        none_if_missing: None when what the call reads or deletes does not exist.
        propagation: which errors mean IAM has not yet propagated what the call needs.
        maybe_done: error codes the call site resolves itself, raised as MaybeDone.
        Any other failure raises the domain error (AwsUnavailable once retries are spent)."""
        return self._answer(action, params, none_if_missing, propagation, maybe_done)

    def paginate(
        self, action: str, key: str, /, *, empty_if_missing: bool = False, **params: Any
    ) -> list[Any]:
        """Every item under `key` across the listing's pages, each page a call of its own (so a
        failed page is retried alone); [] when what it lists does not exist (empty_if_missing)."""
        items: list[Any] = []
        position: dict[str, str] = {}
        while True:
            page = self._answer(action, {**params, **position}, empty_if_missing, None, ())
            if page is None:
                return []
            items += page[key]
            position = self._paging.after(page)
            if not position:
                return items

    def _answer(
        self,
        action: str,
        params: Mapping[str, Any],
        none_if_missing: bool,
        propagation: Propagation | None,
        maybe_done: Collection[str],
    ) -> Answer | None:
        with self._tracer.start_as_current_span(
            f"{self._service}.{action}", kind=SpanKind.CLIENT, attributes=self._about(action)
        ) as span:
            attempts = Attempts(self._tally, self._service, action)
            # boto3 names each client method by this same conversion of the action's name.
            method = getattr(self._client, xform_name(action))
            attempt = partial(attempts.run, partial(method, **params))
            if self._writes is not None and _is_write(action):
                attempt = partial(_budgeted, self._writes, action, attempt)
            try:
                return self._retried(action, attempt, none_if_missing, propagation, maybe_done)
            except CredentialsUnavailable as error:
                where = f"account {self._account}" if self._account else "the account"
                raise AwsUnavailable(f"{where} cannot be reached: {error}") from error
            except AwsUnavailable as error:
                if not self._account:
                    raise
                raise AwsUnavailable(f"account {self._account}: {error}") from error
            finally:
                attempts.describe(span)

    def _retried(
        self,
        action: str,
        attempt: Callable[[], Answer],
        none_if_missing: bool,
        propagation: Propagation | None,
        maybe_done: Collection[str],
    ) -> Answer | None:
        try:
            answer: Answer = self._retry.call(action, attempt, propagation)
        except ClientError as error:
            if none_if_missing and error_code(error) in self._missing:
                return None
            if error_code(error) in maybe_done:
                raise MaybeDone(action, error) from error
            raise translate(action, error) from error
        except (BotoCoreError, ResponseParserError) as error:
            raise translate(action, error) from error
        return answer

    def _about(self, action: str) -> dict[str, str]:
        """The call's span attributes, as OpenTelemetry's botocore instrumentation names them."""
        return {"rpc.system": "aws-api", "rpc.service": self._service, "rpc.method": action}


class Attempts:
    """The attempts of one call: each counted in the tally (if any) with its outcome, and the
    count and the last outcome named on the call's span."""

    def __init__(self, tally: CallTally | None, service: str, action: str) -> None:
        self._tally, self._service, self._action = tally, service, action
        self._made, self._outcome = 0, ""

    def run(self, attempt: Callable[[], Answer]) -> Answer:
        self._made += 1
        try:
            answer = attempt()
        except Exception as error:
            self._record(error)
            raise
        self._record(None)
        return answer

    def describe(self, span: Span) -> None:
        span.set_attribute("aws.attempts", self._made)
        span.set_attribute("aws.retries", max(self._made - 1, 0))
        if self._outcome:
            span.set_attribute("aws.outcome", self._outcome)

    def _record(self, error: Exception | None) -> None:
        self._outcome = outcome_of(error)
        if self._tally is not None:
            self._tally.record(self._service, self._action, self._outcome)


def _is_write(action: str) -> bool:
    return not action.startswith(("Get", "List", "Describe"))


def _budgeted(writes: WriteRate, action: str, attempt: Callable[[], Answer]) -> Answer:
    writes.take(action)
    return attempt()


Client = TypeVar("Client")


class AwsAdapter(Generic[Client]):
    """What BotoIam and BotoEc2 share: their AwsCalls, the retry budgets, and a counter of
    retries (shared by both adapters when the composition root passes the same one).

    `account` names the account the client acts in (a spoke's "name (id)") in every
    AwsUnavailable its calls raise; "" for the broker's own account."""

    MISSING: ClassVar[frozenset[str]]
    PAGING: ClassVar[Paging]
    # The service's name in the call tally.
    SERVICE: ClassVar[str]

    def __init__(
        self,
        client: Client,
        *,
        propagation_timeout: float,
        budgets: RetryBudgets | None = None,
        retries: RetryCounter | None = None,
        writes: WriteRate | None = None,
        tally: CallTally | None = None,
        tracer: Tracer | None = None,
        account: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        budgets = replace(budgets or RetryBudgets(), propagation=propagation_timeout)
        self.retries = retries if retries is not None else RetryCounter()
        retry = AwsRetry(budgets, self.retries, sleep, clock)
        self._aws = AwsCalls(
            client,
            retry,
            missing=self.MISSING,
            paging=self.PAGING,
            writes=writes,
            tally=tally,
            service=self.SERVICE,
            tracer=tracer,
            account=account,
        )
