"""Configuration from BROKER_* environment variables; those most often set per run (listen,
database, AWS endpoint, role path, propagation timeout, auth and its files) are also flags of
`access-broker serve` (see its --help)."""

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.domain.boundary import BOUNDARY_NAME
from broker.domain.durations import parse_duration
from broker.domain.naming import DEFAULT_ROLE_PATH
from broker.domain.validation import MAX_TTL


class ConfigurationError(Exception):
    """A configuration file is unreadable or malformed, or a setting is missing or wrong; the
    message says which, where and why. `serve` refuses to start on one (exit status 2)."""


# IAM's rule for paths: "/" or "/segments/" of printable ASCII, at most 512 characters.
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}")
_IAM_PATH = re.compile(r"/|/[\x21-\x7e]{1,510}/")
# A customer managed policy of the boundary's name on the root path: the one the broker's IAM
# policy names (deploy/iam/broker-policy.json).
_BOUNDARY_ARN = re.compile(rf"arn:aws[a-z-]*:iam::\d{{12}}:policy/{BOUNDARY_NAME}")
_HTTP_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


def webhook_urls(value: str | None) -> list[str]:
    """BROKER_WEBHOOK_URL's URLs, in order."""
    return [url.strip() for url in (value or "").split(",") if url.strip()]


def _duration(value: object) -> object:
    """ "8h"-style text as a timedelta; "" as unset. Bare numbers are refused: seconds or hours?"""
    if isinstance(value, str):
        return parse_duration(value) if value.strip() else None
    return value


# A grant duration, written like brokerctl's --ttl: 90s, 15m, 8h, 2d, 1h30m.
Duration = Annotated[timedelta | None, BeforeValidator(_duration)]


def _unset_when_empty(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# A file's path; "" (an exported but empty variable) as unset.
FilePath = Annotated[Path | None, BeforeValidator(_unset_when_empty)]
# How callers prove who they are; see docs/security.md.
AuthMode = Literal["token", "mtls", "none"]


class Settings(BaseSettings):
    """AWS credentials and region come from the standard AWS variables, as boto3 reads them."""

    model_config = SettingsConfigDict(env_prefix="BROKER_", extra="ignore")

    listen: str = "127.0.0.1:50051"
    # Where /metrics is served (Prometheus text format), host:port; "off" serves none.
    metrics_listen: str = "127.0.0.1:9464"
    # Where the health service is served alone, in plaintext, host:port, for probes and load
    # balancers that cannot present a client certificate; "off" serves it on `listen` only.
    health_listen: str = "off"
    database_url: str = "sqlite:///broker.db"
    # Unset: real AWS. Set: an AWS-compatible endpoint such as an emulator.
    aws_endpoint_url: str | None = None
    role_path: str = DEFAULT_ROLE_PATH
    # How long to wait for IAM changes to reach EC2 (seconds); Terraform waits 2 minutes too.
    propagation_timeout: float = Field(default=120.0, gt=0)
    # How long one AWS call may keep retrying each kind of transient failure (seconds), counted
    # from that kind's first failure in the call; then the caller gets UNAVAILABLE.
    aws_throttling_budget: float = Field(default=30.0, ge=0)
    aws_server_error_budget: float = Field(default=15.0, ge=0)
    aws_connection_budget: float = Field(default=15.0, ge=0)
    # IAM writes a second at most, shared by requests and the sweep's chores; a burst of work
    # waits for its turn rather than being throttled by IAM. 0: no budget.
    aws_write_rate: float = Field(default=10.0, ge=0)
    # The fraction of each account's role and instance profile quotas never used by the broker:
    # a grant that needs a new role past it is refused (RESOURCE_EXHAUSTED).
    role_quota_headroom: float = Field(default=0.05, ge=0, lt=1)
    # botocore's own attempts per call (standard mode); 1 leaves all retrying to the budgets.
    aws_max_attempts: int = Field(default=1, ge=1, le=10)
    # How often the background sweep finishes interrupted or postponed work (seconds).
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # How often the sweep also removes roles and profiles no grant needs (seconds); it always
    # does at start. Each pass lists the role path and reads every broker role's tags.
    orphan_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    # How often the sweep also compares what AWS holds for every instance with a live grant
    # with what the grants need, and repairs the difference (seconds); it always does at start.
    # Each pass reads AWS in pages (the account's roles, the instances in batches) and examines
    # one by one only the instances that differ.
    drift_sweep_interval_seconds: float = Field(default=300.0, gt=0)
    # How often the sweep also walks the audit trail's hash chain (seconds); it always does at
    # start. Each walk reads the whole trail, in pages, and reports in /metrics.
    audit_verify_interval_seconds: float = Field(default=3600.0, gt=0)
    # Off only where several brokers with separate databases share one role path (tests that
    # share an emulator): each would take the others' roles for orphans.
    remove_orphans: bool = True
    # The ttl of a grant requested without one; unset: such grants never expire (unless a
    # maximum is set, which is then the default: no grant outlives the maximum).
    default_ttl: Duration = None
    # The longest ttl a grant or an extension may ask for; unset: only the broker's own bound.
    max_ttl: Duration = None
    # Webhooks told of every grant state change (comma-separated http(s) URLs), each delivery
    # signed with the secret; a Slack incoming webhook told of the same. Unset: none.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    # The longest wait before trying a destination that failed again (seconds); the wait
    # doubles from 1 s with each failure in a row, up to this.
    notify_max_backoff_seconds: float = Field(default=300.0, gt=0)
    # How long a request that needs approval waits unanswered before it lapses (EXPIRED), for
    # a rule that names no timeout of its own.
    approval_timeout: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(hours=24)
    # How long EC2 may not know an instance (in the account and region it was granted in)
    # before the broker takes it for gone: its grants end and its role and profile go.
    gone_after: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(hours=2)
    # Every statement of an instance's policy holds only for credentials delivered through
    # IMDSv2 (ec2:RoleDelivery >= 2.0).
    require_imdsv2: bool = False
    # "vpc": every statement holds only for requests from the instance's own VPC.
    bind_credentials: Literal["none", "vpc"] = "none"
    # An instance already holding a profile the broker did not make: "refuse" the grant
    # (FAILED_PRECONDITION), or "attach" the broker's own inline policy to that profile's role,
    # touching nothing else of it.
    foreign_profile: Literal["refuse", "attach"] = "refuse"
    # The managed policy every role the broker creates carries as its permissions boundary
    # (deploy/iam/boundary-policy.json, named accessbroker-boundary): required by `serve`
    # outside the sandbox. In a spoke account, the policy of the same name there.
    permissions_boundary_arn: str | None = None
    # How long calls in flight may take to finish after SIGTERM (seconds).
    shutdown_grace: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    # json: one JSON object a line, with the call's request id, method, caller, grant and
    # instance; text: plain lines with the same context. Unset: text on a terminal, else json.
    log_format: Literal["json", "text"] | None = None
    # token: a bearer token listed (as its digest) in the tokens file; mtls: a client
    # certificate signed by the client CA; none: every caller is "anonymous". Unset: token,
    # except in the sandbox (`serve --sandbox`, `demo`), which then uses none.
    auth_mode: AuthMode | None = None
    # The server's certificate chain and key (PEM): required in mtls mode, TLS in token mode.
    tls_cert: FilePath = None
    tls_key: FilePath = None
    # The CA (PEM) that signs the client certificates, mtls mode.
    tls_client_ca: FilePath = None
    # YAML: `tokens: [{identity: NAME, sha256: HEX DIGEST OF THE TOKEN}]`; token mode.
    tokens_file: FilePath = None
    # YAML: admins, deny_buckets and rules (see broker.adapters.config.policy_file); required
    # in token and mtls mode. Without it in none mode every caller may do everything.
    policy_file: FilePath = None
    # YAML: the AWS accounts and regions served (see broker.adapters.config.accounts_file).
    # Without it: the broker's own account, in its configured region.
    accounts_file: FilePath = None

    @field_validator("default_ttl", "max_ttl")
    @classmethod
    def _within_the_domains_bound(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value > MAX_TTL:
            raise ValueError(f"must be at most {MAX_TTL.days} days")
        return value

    @model_validator(mode="after")
    def _default_within_maximum(self) -> Self:
        default, maximum = self.default_ttl, self.max_ttl
        if default is not None and maximum is not None and default > maximum:
            raise ValueError("BROKER_DEFAULT_TTL must not be longer than BROKER_MAX_TTL")
        return self

    @field_validator("metrics_listen", "health_listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        if value != "off" and not _HOST_PORT.fullmatch(value):
            raise ValueError("must be host:port (port 0 picks a free one), or off")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_urls(cls, value: str | None) -> str | None:
        for url in webhook_urls(value):
            if not _HTTP_URL.fullmatch(url):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Self:
        if webhook_urls(self.webhook_url) and self.webhook_secret is None:
            raise ValueError(
                "BROKER_WEBHOOK_SECRET must be set with BROKER_WEBHOOK_URL: receivers verify "
                "each delivery's signature with it"
            )
        return self

    @field_validator("permissions_boundary_arn")
    @classmethod
    def _boundary_policy_arn(cls, value: str | None) -> str | None:
        if value and not _BOUNDARY_ARN.fullmatch(value):
            raise ValueError(
                f"must be the ARN of the managed policy {BOUNDARY_NAME} on the root path "
                f"(arn:aws:iam::<account id>:policy/{BOUNDARY_NAME}): the broker's IAM policy "
                "lets it create roles only with that boundary"
            )
        return value

    @field_validator("role_path")
    @classmethod
    def _iam_path(cls, value: str) -> str:
        if not _IAM_PATH.fullmatch(value):
            raise ValueError("must be '/' or '/name/' of printable ASCII, at most 512 characters")
        return value

    @property
    def authentication(self) -> AuthMode:
        return self.auth_mode or "token"

    def security_problems(self) -> list[str]:
        """What the auth mode needs and is not given; `serve` refuses to start with any.
        Whether the files can be read and make sense is checked when they are loaded."""
        mode, problems = self.authentication, []
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append("BROKER_TLS_CERT and BROKER_TLS_KEY go together: set both or neither")
        if mode == "mtls" and None in (self.tls_cert, self.tls_key, self.tls_client_ca):
            problems.append(
                "auth mode mtls needs BROKER_TLS_CERT, BROKER_TLS_KEY and BROKER_TLS_CLIENT_CA"
            )
        if mode != "mtls" and self.tls_client_ca is not None:
            problems.append("BROKER_TLS_CLIENT_CA is only used in auth mode mtls")
        if mode == "token" and self.tokens_file is None:
            problems.append(f"auth mode token{self._default_note} needs BROKER_TOKENS_FILE")
        if mode != "token" and self.tokens_file is not None:
            problems.append("BROKER_TOKENS_FILE is only used in auth mode token")
        if mode != "none" and self.policy_file is None:
            problems.append(
                f"auth mode {mode}{self._default_note} needs BROKER_POLICY_FILE: without "
                "rules every request would be refused"
            )
        return problems

    @property
    def _default_note(self) -> str:
        return "" if self.auth_mode else " (the default)"
