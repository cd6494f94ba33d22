"""The files and variables settings come from, read before they are validated: ``.env``
(``read_env_file``), the TOML config file, the profiles' defaults, and which home a command
runs in (``resolve_home``: the kill switch must find it whatever else is wrong)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from solbot.domain.errors import ConfigurationError

PROFILES: dict[str, dict[str, Any]] = {
    "staging": {"port": 3000, "home": "/opt/solbot"},
    "production": {"port": 3001, "home": "/opt/solbot-prod"},
}


class ConfigError(ConfigurationError):
    """Bad configuration; the message is one line naming the key."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments; optional quotes. Only SOLBOT_* keys are used."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:  # e.g. root-owned 0600 while the bot runs as its own user
        raise ConfigError(
            f"{path}: {exc.strerror} (the bot's user must be able to read it)"
        ) from None
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw_bytes[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        lineno = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError(f"{path}:{lineno}: a NUL byte (not a text file)")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def read_config_file(config_file: Path | None) -> dict[str, Any]:
    if config_file is None:
        return {}
    try:
        return dict(tomllib.loads(config_file.read_text()))
    except OSError as exc:
        raise ConfigError(f"config file {config_file}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {config_file}: {exc}") from None


def explicit_home(home: Path | None, file: dict[str, Any], env: dict[str, str]) -> Path | None:
    """The home asked for: the command line's, else ``SOLBOT_HOME``, else the config file's."""
    if home is not None:
        return home
    if env.get("SOLBOT_HOME"):
        return Path(env["SOLBOT_HOME"])
    if "home" in file:
        return Path(str(file["home"]))
    return None


def resolve_home(
    home: Path | None = None,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Path:
    """The home the bot runs in for these arguments — what ``load_settings`` gives, without
    validating anything else (the kill switch must work whatever else is wrong): the command
    line > ``SOLBOT_HOME`` > the config file > the profile's > the working directory."""
    env = dict(os.environ if environ is None else environ)
    file = read_config_file(config_file)
    explicit = explicit_home(home, file, env)
    if explicit is not None:
        return explicit.resolve()
    try:
        dotenv = read_env_file(Path(".env"))
    except ConfigError:
        dotenv = {}
    profile = {**dotenv, **env}.get("SOLBOT_PROFILE") or str(file.get("profile", "dev"))
    return Path(str(PROFILES.get(profile, {}).get("home", "."))).resolve()
