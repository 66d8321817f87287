"""brokerctl's command line, up to the point where it would call the broker."""

from pathlib import Path

import pytest

from accessbroker.cli.main import main
from accessbroker.cli.parser import build_parser
from accessbroker.models import Access, GrantState


def test_global_options_go_before_or_after_the_command() -> None:
    before = build_parser().parse_args(["-o", "json", "--address", "h:1", "list"])
    after = build_parser().parse_args(["list", "-o", "json", "--address", "h:1"])
    plain = build_parser().parse_args(["list"])
    assert (before.output, before.address) == (after.output, after.address) == ("json", "h:1")
    assert (plain.output, plain.address, plain.token) == ("table", None, None)


def test_arguments_are_parsed_into_sdk_types() -> None:
    args = build_parser().parse_args(
        ["grant", "--instance", "i-1", "--bucket", "b", "--access", "read_write", "--dry-run"]
    )
    assert (args.access, args.prefix, args.ttl, args.dry_run) == (Access.READ_WRITE, "", None, True)
    waiting = build_parser().parse_args(["wait", "g", "--state", "Revoked", "--timeout", "2m"])
    assert (waiting.state, waiting.timeout) == (GrantState.REVOKED, 120.0)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["grant", "--instance", "i-1", "--bucket", "b", "--access", "write"],
        ["list", "--state", "sleepy"],
        ["wait", "g", "--timeout", "soon"],
        ["audit", "--after", "-3"],
        ["-o", "yaml", "list"],
        ["plan"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for line in ("2  invalid input", "3  not found", "4  denied", "5  unavailable", "6  conflict"):
        assert line in help_text
    assert "BROKER_ADDRESS" in help_text and "BROKER_TOKEN" in help_text


def test_a_bad_request_file_exits_2_before_calling_the_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "access.yaml"
    path.write_text("instances:\n  i-0123456789abcdef0:\n    - {bucket: b}\n")
    # Port 1 is never a broker: reaching it would be exit 5, not 2.
    assert main(["--address", "127.0.0.1:1", "plan", "-f", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == f"brokerctl: {path} is not a valid request file (1 problem); fix these and try again:"
    )
    assert err[1:] == ["  i-0123456789abcdef0 entry 1 (bucket b): `access` is required"]


def test_a_bad_ttl_exits_2_before_calling_the_broker(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--address",
        "127.0.0.1:1",
        "grant",
        "--instance",
        "i-1",
        "--bucket",
        "b",
        "--access",
        "read",
        "--ttl",
        "8",
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("brokerctl: --ttl: invalid duration '8'")


def test_the_audit_trail_of_one_place_is_asked_for_by_account_and_region() -> None:
    listing = build_parser().parse_args(["audit", "--account", "prod", "--region", "eu-west-1"])
    following = build_parser().parse_args(["audit", "--follow", "--account", "prod"])
    everywhere = build_parser().parse_args(["audit"])

    assert (listing.account, listing.region) == ("prod", "eu-west-1")
    assert (following.follow, following.account) == (True, "prod")
    assert (everywhere.account, everywhere.region) == ("", "")
