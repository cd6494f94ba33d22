"""Secrets from AWS SSM Parameter Store into the bot's ``.env`` (the runbook: environment
variables live in SSM, API keys as SecureString).

``ssm:/solbot/prod/env`` names a path: every parameter directly under it becomes one line,
``/solbot/prod/env/SOLBOT_EXCHANGE_API_KEY`` → ``SOLBOT_EXCHANGE_API_KEY=...``. SecureStrings
are decrypted. The file is written whole or not at all (temporary file, fsync, rename) with
mode 0600 from its creation; values never reach the terminal, logs or exceptions — reports
name keys only.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class SecretsError(Exception):
    """Bad source or unusable parameters (exit 2)."""


class SecretsUnavailable(Exception):
    """SSM could not be reached or refused us (exit 4)."""


@dataclass(frozen=True, slots=True)
class Pulled:
    keys: list[str]
    path: Path


def parse_source(source: str) -> str:
    scheme, sep, path = source.partition(":")
    if scheme != "ssm" or not sep or not path.startswith("/") or path == "/":
        raise SecretsError(f"--from: expected ssm:/path/to/params, got {source!r}")
    return path.rstrip("/")


def fetch_ssm(path: str, region: str | None, endpoint_url: str | None) -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client: Any = boto3.client("ssm", region_name=region, endpoint_url=endpoint_url)
        values: dict[str, str] = {}
        pages = client.get_paginator("get_parameters_by_path").paginate(
            Path=path, Recursive=False, WithDecryption=True
        )
        for page in pages:
            for p in page.get("Parameters", []):
                values[str(p["Name"]).rsplit("/", 1)[-1]] = str(p["Value"])
    except ClientError as exc:  # the message names the operation and code, not values
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SecretsUnavailable(f"SSM refused get_parameters_by_path {path}: {code}") from None
    except BotoCoreError as exc:
        raise SecretsUnavailable(f"SSM unreachable: {type(exc).__name__}") from None
    return values


def render(values: dict[str, str]) -> str:
    lines = ["# written by `solbot secrets pull`; edit in SSM, not here"]
    for key in sorted(values):
        value = values[key]
        if not KEY.match(key):
            raise SecretsError(f"parameter {key!r}: not a valid variable name")
        if "\n" in value or "\r" in value:
            raise SecretsError(f"parameter {key}: multi-line values are not supported")
        quoted = value
        if value != value.strip() or "#" in value or value[:1] in ("'", '"'):
            # quoted for our loader and for systemd's EnvironmentFile= alike
            q = "'" if "'" not in value else '"' if '"' not in value else None
            if q is None:
                raise SecretsError(f"parameter {key}: cannot quote a value with both quotes")
            quoted = q + value + q
        lines.append(f"{key}={quoted}")
    return "\n".join(lines) + "\n"


def write_env(dest: Path, text: str) -> None:
    """Atomically replace ``dest`` with ``text``, readable by its owner only (0600)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=dest.parent)  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def pull(source: str, dest: Path, region: str | None, endpoint_url: str | None) -> Pulled:
    path = parse_source(source)
    values = fetch_ssm(path, region, endpoint_url)
    if not values:
        raise SecretsError(f"no parameters under {path} (nothing written)")
    write_env(dest, render(values))
    return Pulled(sorted(values), dest)
