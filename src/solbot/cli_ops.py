"""Operations commands: ``solbot secrets pull``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from solbot.cli import app, errors, fail, home, out
from solbot.runtime.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE

secrets_app = typer.Typer(no_args_is_help=True, help="Secrets: pull from AWS SSM into .env.")
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("pull")
def secrets_pull(
    source: Annotated[str, typer.Option("--from", help="ssm:/path (one parameter per key)")],
    to: Annotated[
        Path | None, typer.Option(help="file to write (default: $SOLBOT_HOME/.env)")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: AWS config)")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="SSM endpoint (tests: a local moto server)")
    ] = None,
) -> None:
    """Write every parameter under an SSM path (SecureStrings decrypted) to .env, mode 0600.
    Prints the key names only. Exit 2: bad --from or no parameters; 4: SSM unreachable."""
    from solbot.ops.secrets import SecretsError, SecretsUnavailable, pull

    with errors():
        try:
            got = pull(source, to or home() / ".env", region, endpoint_url)
        except SecretsError as exc:
            fail(EXIT_USAGE, str(exc))
        except SecretsUnavailable as exc:
            fail(EXIT_UNREACHABLE, str(exc))
        out.print(f"wrote {len(got.keys)} keys to {got.path} (mode 0600): {', '.join(got.keys)}")
