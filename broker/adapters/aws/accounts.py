"""The Iam and Ec2 adapters of every configured account and region (the AwsAccounts port).

The home account is reached with the broker's own credentials. A spoke account is reached by
assuming its role (STS AssumeRole, from the home credentials): each spoke has a boto3 session of
its own whose credentials botocore refreshes itself, a while before they expire
(DeferredRefreshableCredentials: the first call assumes the role, later ones reuse the
credentials). A refresh that fails raises CredentialsUnavailable within the call, which the
call turns into AwsUnavailable naming the account; a spoke's adapters name it in every
AwsUnavailable. Each account has its own session, so one that cannot be reached leaves the
others untouched; and after its AssumeRole fails, calls there fail at once for
ASSUME_RETRY_AFTER rather than each wait out STS again (an STS that hangs would otherwise hold
every request and sweep for that account for the whole retry budget).

Nothing is built until first asked for, and then kept: one BotoIam per account (IAM is global),
one BotoEc2 per account and region, one write budget per account (IAM's rate limits are the
account's).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ClientError

from broker.adapters.aws.calls import Answer, AwsAdapter, Paging
from broker.adapters.aws.clients import StaticCredentials
from broker.adapters.aws.ec2 import BotoEc2
from broker.adapters.aws.errors import CredentialsUnavailable, error_code
from broker.adapters.aws.iam import BotoIam
from broker.adapters.aws.rate import WriteRate
from broker.domain.accounts import Account, Accounts
from broker.domain.errors import AwsRejected, AwsUnavailable
from broker.domain.places import Place

if TYPE_CHECKING:
    from mypy_boto3_sts.client import STSClient  # noqa: F401 (_Sts's type argument)

log = logging.getLogger(__name__)

# What the broker's sessions in a spoke account are called (CloudTrail shows it).
ROLE_SESSION_NAME = "accessbroker"
# How long assumed credentials last (AWS's default and the least every role allows); botocore
# refreshes them from 15 minutes before they expire, and insists from 10 minutes before.
SESSION_SECONDS = 3600
# How long after a failed AssumeRole the account's calls fail without trying again.
ASSUME_RETRY_AFTER = timedelta(seconds=30)
_METHOD = "accessbroker-assume-role"


class BotoAccounts:
    """The adapters of every configured place, each built on first use and kept.

    adapter_options: what every BotoIam and BotoEc2 gets (propagation_timeout, budgets,
    retries, tally, tracer). write_rate: IAM writes a second per account (None: no budget).
    now: what assumed credentials' expiry is measured against (tests move it).
    """

    def __init__(
        self,
        accounts: Accounts,
        *,
        endpoint_url: str | None,
        home_credentials: StaticCredentials | None,
        max_attempts: int,
        write_rate: float | None,
        adapter_options: dict[str, Any],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._accounts = accounts
        self._endpoint_url, self._home_credentials = endpoint_url, home_credentials
        self._max_attempts = max_attempts
        self._config = Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=5.0,
            read_timeout=30.0,
        )
        self._write_rate, self._options, self._now = write_rate, dict(adapter_options), now
        # Guards every cache below (boto3 sessions are not safe to build clients from at once).
        self._lock = threading.RLock()
        self._sessions: dict[str, boto3.Session] = {}
        self._iams: dict[str, BotoIam] = {}
        self._ec2s: dict[Place, BotoEc2] = {}
        self._writes: dict[str, WriteRate] = {}
        self._sts: _Sts | None = None
        self._loader: Any = None
        # By account key: the last AssumeRole that failed, while calls there fail at once.
        self._assume_failures: dict[str, _Failure] = {}

    @property
    def accounts(self) -> Accounts:
        return self._accounts

    def beside(self, accounts: Accounts) -> BotoAccounts:
        """Adapters of other accounts, built as these are: to look at accounts before serving
        them. Nothing is shared: no budget, no cached credentials."""
        return BotoAccounts(
            accounts,
            endpoint_url=self._endpoint_url,
            home_credentials=self._home_credentials,
            max_attempts=self._max_attempts,
            write_rate=self._write_rate,
            adapter_options=self._options,
            now=self._now,
        )

    def iam(self, account: str) -> BotoIam:
        """The IAM of the account with this key (HOME_ACCOUNT: the broker's own)."""
        with self._lock:
            adapter = self._iams.get(account)
            if adapter is None:
                configured = self._configured(account)
                client = self._session(configured).client(
                    "iam", endpoint_url=self._endpoint_url, config=self._config
                )
                adapter = BotoIam(
                    client,
                    writes=self._write_budget(configured),
                    account=_label(configured),
                    **self._options,
                )
                self._iams[account] = adapter
            return adapter

    def ec2(self, place: Place) -> BotoEc2:
        """The EC2 of an account's region (any region: the configured ones are what requests
        may name, and a grant recorded in a region since dropped still needs revoking)."""
        with self._lock:
            adapter = self._ec2s.get(place)
            if adapter is None:
                configured = self._configured(place.account)
                client = self._session(configured).client(
                    "ec2",
                    region_name=place.region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                )
                adapter = BotoEc2(client, account=_label(configured), **self._options)
                self._ec2s[place] = adapter
            return adapter

    def reload(self, accounts: Accounts) -> None:
        """The accounts file was read again: the adapters (and assumed credentials) of accounts
        configured exactly as before are kept, the others' are dropped and built anew on next
        use. An account's write budget is kept while it stays configured."""
        with self._lock:
            unchanged = {a.key for a in accounts.all if a in self._accounts.all}
            configured = {a.key for a in accounts.all}
            self._accounts = accounts
            for key in set(self._sessions) - unchanged:
                del self._sessions[key]
            for key in set(self._iams) - unchanged:
                del self._iams[key]
            for place in [p for p in self._ec2s if p.account not in unchanged]:
                del self._ec2s[place]
            for key in set(self._writes) - configured:
                del self._writes[key]
            for key in set(self._assume_failures) - unchanged:
                # A changed account is tried anew at once. pop: a refresh of its old session
                # may drop the entry meanwhile (not under this lock).
                self._assume_failures.pop(key, None)
            if accounts.home.key not in unchanged:
                self._sts = None

    def _configured(self, key: str) -> Account:
        """The account of that key; AwsUnavailable when it is not configured (any more: the
        grants recorded there wait, with the reason, until it is again)."""
        for account in self._accounts.all:
            if account.key == key:
                return account
        raise AwsUnavailable(
            f"account {key} cannot be reached: it is not configured in the accounts file"
        )

    def _write_budget(self, account: Account) -> WriteRate | None:
        if self._write_rate is None:
            return None
        if account.key not in self._writes:
            self._writes[account.key] = WriteRate(self._write_rate)
        return self._writes[account.key]

    def _session(self, account: Account) -> boto3.Session:
        session = self._sessions.get(account.key)
        if session is None:
            session = self._home_session() if account.is_home else self._spoke_session(account)
            self._sessions[account.key] = session
        return session

    def _home_session(self) -> boto3.Session:
        home, key = self._accounts.home, self._home_credentials
        return boto3.Session(
            region_name=home.regions[0],
            aws_access_key_id=key.access_key_id if key else None,
            aws_secret_access_key=key.secret_access_key if key else None,
            aws_session_token=key.session_token if key else None,
            botocore_session=self._botocore_session(),
        )

    def _spoke_session(self, account: Account) -> boto3.Session:
        """A session whose only credentials are those of the account's role, assumed on first
        use and again before they expire."""
        clock = {"time_fetcher": self._now} if self._now is not None else {}
        credentials = DeferredRefreshableCredentials(
            refresh_using=self._assumer(account), method=_METHOD, **clock
        )
        core = self._botocore_session()
        # Only these credentials: never the environment's or the instance's, which are home's.
        core.register_component("credential_provider", CredentialResolver([_Fixed(credentials)]))
        return boto3.Session(region_name=account.regions[0], botocore_session=core)

    def _botocore_session(self) -> botocore.session.Session:
        """A botocore session sharing the first one's loader of service models (loading them
        anew takes a while for each session)."""
        core = botocore.session.Session()
        if self._loader is None:
            self._loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", self._loader)
        return core

    def _assumer(self, account: Account) -> Callable[[], dict[str, str]]:
        def assume() -> dict[str, str]:
            """Fresh credentials of the account's role, in botocore's refresh format."""
            self._refuse_while_failed(account)
            try:
                answer = self._home_sts().assume(account.role_arn, account.external_id)
            except (AwsRejected, AwsUnavailable) as error:
                why = f"AssumeRole of {account.role_arn} failed: {_why(error)}"
                self._assume_failures[account.key] = _Failure(account, self._clock(), why)
                raise CredentialsUnavailable(why) from error
            self._assume_failures.pop(account.key, None)
            issued = answer["Credentials"]
            log.info("assumed %s for account %s", account.role_arn, _label(account))
            return {
                "access_key": issued["AccessKeyId"],
                "secret_key": issued["SecretAccessKey"],
                "token": issued["SessionToken"],
                "expiry_time": issued["Expiration"].isoformat(),
            }

        return assume

    def _refuse_while_failed(self, account: Account) -> None:
        """CredentialsUnavailable, at once, while the account's last AssumeRole failure is
        recent."""
        failed = self._assume_failures.get(account.key)
        if failed is None or failed.account != account:
            return  # none, or of the account as configured before a reload
        since = self._clock() - failed.at
        if since < ASSUME_RETRY_AFTER:
            raise CredentialsUnavailable(
                f"{failed.why} ({since.total_seconds():.0f} s ago; tried again "
                f"{ASSUME_RETRY_AFTER.total_seconds():.0f} s after)"
            )

    def _clock(self) -> datetime:
        return self._now() if self._now is not None else datetime.now(UTC)

    def _home_sts(self) -> _Sts:
        with self._lock:
            if self._sts is None:
                home = self._session(self._accounts.home)
                client = home.client("sts", endpoint_url=self._endpoint_url, config=self._config)
                self._sts = _Sts(client, **self._options)
            return self._sts


class _Sts(AwsAdapter["STSClient"]):
    """AssumeRole, from the home account, under the adapters' retry policy and tally."""

    MISSING = frozenset[str]()
    SERVICE = "sts"
    PAGING = Paging(token="")

    def assume(self, role_arn: str, external_id: str) -> Answer:
        # The external id the spoke's trust policy may require (AWS's confused-deputy guard).
        extra: dict[str, Any] = {"ExternalId": external_id} if external_id else {}
        answer: Answer = self._aws.call(
            "AssumeRole",
            RoleArn=role_arn,
            RoleSessionName=ROLE_SESSION_NAME,
            DurationSeconds=SESSION_SECONDS,
            **extra,
        )
        return answer


@dataclass(frozen=True)
class _Failure:
    """When the account's AssumeRole failed, and why; `account` as configured then (an old
    session's refresh, ending after a reload, must not hold the account as configured now)."""

    account: Account
    at: datetime
    why: str


class _Fixed(CredentialProvider):
    """A credential provider that always gives the same (refreshable) credentials."""

    METHOD = _METHOD
    CANONICAL_NAME = "accessbroker-assume-role"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def _label(account: Account) -> str:
    """How errors name a spoke account, e.g. "prod (222222222222)"; "" for the home."""
    if account.is_home:
        return ""
    return f"{account.name} ({account.id})" if account.id != account.name else account.id


def _why(error: AwsRejected | AwsUnavailable) -> str:
    """AWS's error code for a refusal (its message, which names principals, went to the log
    when the error was translated); the whole story when STS did not answer."""
    cause = error.__cause__
    if isinstance(error, AwsRejected) and isinstance(cause, ClientError):
        return error_code(cause)
    return str(error)
