"""``solbot secrets pull`` against moto's SSM server on 127.0.0.1 (real boto3, real HTTP)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from solbot.runtime.config import load_settings, read_env_file
from tests.integration.botproc import free_port, solbot_cmd
from tests.integration.moto_server import AWS_ENV, moto_server

pytestmark = pytest.mark.integration
pytest.importorskip("moto", reason="moto[server] is not installed (pip install -e '.[dev]')")

API_KEY = "live-key-7f3a9c0d2b"
API_SECRET = "live-secret-#with spaces and=signs "


@pytest.fixture
def ssm() -> Iterator[str]:
    with moto_server() as url:
        yield url


def put(url: str, name: str, value: str, secure: bool = True) -> None:
    import boto3

    client = boto3.client("ssm", endpoint_url=url, region_name="eu-central-1", **_creds())
    client.put_parameter(
        Name=name, Value=value, Type="SecureString" if secure else "String", Overwrite=True
    )


def _creds() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def pull(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        solbot_cmd("secrets", "pull", "--endpoint-url", url, "--region", "eu-central-1", *args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **AWS_ENV, "SOLBOT_HOME": str(tmp)},
    )


def test_pull_writes_decrypted_env_0600_atomically_and_prints_no_value(
    tmp_path: Path, ssm: str
) -> None:
    put(ssm, "/solbot/prod/env/SOLBOT_EXCHANGE_API_KEY", API_KEY)
    put(ssm, "/solbot/prod/env/SOLBOT_EXCHANGE_API_SECRET", API_SECRET)
    put(ssm, "/solbot/prod/env/SOLBOT_PROFILE", "production", secure=False)
    put(ssm, "/solbot/prod/env/nested/IGNORED", "x")  # below the path: not ours
    put(ssm, "/solbot/staging/env/SOLBOT_EXCHANGE_API_KEY", "staging-key")
    env_file = tmp_path / ".env"
    env_file.write_text("SOLBOT_OLD=1\n")
    env_file.chmod(0o644)

    r = pull(tmp_path, ssm, "--from", "ssm:/solbot/prod/env")
    assert r.returncode == 0, r.stderr
    assert "wrote 3 keys" in r.stdout and "SOLBOT_EXCHANGE_API_SECRET" in r.stdout
    for secret in (API_KEY, API_SECRET.strip(), "staging-key"):
        assert secret not in r.stdout + r.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env_file(env_file)
    assert values == {
        "SOLBOT_EXCHANGE_API_KEY": API_KEY,
        "SOLBOT_EXCHANGE_API_SECRET": API_SECRET,  # spaces, '#' and '=' survive
        "SOLBOT_PROFILE": "production",
    }
    assert not list(tmp_path.glob(".env.*")), "no temporary file left behind"
    settings = load_settings(tmp_path, environ={})  # the bot reads what was pulled
    assert settings.exchange_api_secret is not None
    assert settings.exchange_api_secret.get_secret_value() == API_SECRET


def test_pull_refuses_bad_sources_and_empty_paths_without_touching_env(
    tmp_path: Path, ssm: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SOLBOT_KEEP=1\n")
    bad = pull(tmp_path, ssm, "--from", "s3://bucket/env")
    assert bad.returncode == 2 and "expected ssm:/path" in bad.stderr
    empty = pull(tmp_path, ssm, "--from", "ssm:/solbot/none")
    assert empty.returncode == 2 and "no parameters under /solbot/none" in empty.stderr
    closed = pull(tmp_path, f"http://127.0.0.1:{free_port()}", "--from", "ssm:/solbot/prod")
    assert closed.returncode == 4 and "SSM unreachable" in closed.stderr
    assert len(closed.stderr.strip().splitlines()) == 1
    assert env_file.read_text() == "SOLBOT_KEEP=1\n"


def test_env_rendering_round_trips_awkward_values(tmp_path: Path) -> None:
    from solbot.ops.secrets import SecretsError, render

    values = {"A": " padded ", "B": '"quoted"', "C": "it's #1", "D": "k=v", "E": "plain"}
    path = tmp_path / ".env"
    path.write_text(render(values))
    assert read_env_file(path) == values
    for bad in ({"lower": "x"}, {"A": "two\nlines"}, {"A": "both ' and \" #"}):
        with pytest.raises(SecretsError):
            render(bad)
