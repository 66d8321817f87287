"""`access-broker`'s configuration: flags over environment variables, clear refusals."""

from importlib.metadata import version
from pathlib import Path

import pytest

from broker.entrypoints.cli import _overrides, _parser, main
from broker.settings import Settings


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_ROLE_PATH", "/from-env/")
    monkeypatch.setenv("BROKER_LISTEN", "127.0.0.1:1111")
    monkeypatch.setenv("BROKER_PROPAGATION_TIMEOUT", "7")
    args = _parser().parse_args(["serve", "--role-path", "/from-flag/", "--database-url", "x://"])

    settings = Settings(**_overrides(args))

    assert settings.role_path == "/from-flag/"
    assert settings.database_url == "x://"
    assert settings.listen == "127.0.0.1:1111"
    assert settings.propagation_timeout == 7


def test_defaults_without_flags_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BROKER_LISTEN", "BROKER_DATABASE_URL", "BROKER_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert (settings.listen, settings.database_url) == ("127.0.0.1:50051", "sqlite:///broker.db")
    assert settings.aws_endpoint_url is None
    assert settings.propagation_timeout == 120


@pytest.mark.parametrize("flags", [["--role-path", "no-slashes"], ["--propagation-timeout", "0"]])
def test_invalid_configuration_exits_2_naming_the_setting(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *flags]) == 2

    error = capsys.readouterr().err
    assert "invalid configuration" in error
    assert flags[0].removeprefix("--").replace("-", "_") in error


def test_migrate_says_whether_it_changed_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'broker.db'}"

    assert main(["migrate", "--database-url", url]) == 0
    assert main(["migrate", "--database-url", url]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "database migrated to the latest schema",
        "database was up to date",
    ]


def test_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"access-broker {version('accessbroker')}"
