"""Service configuration: environment (SOLBOT_*), ``<home>/.env`` and an optional TOML file.

Validated in two passes: the shape of each value (types, ranges), then the combination
(e.g. a replay needs a file; a non-loopback address needs an API token). Unknown keys are
rejected. ``load_settings`` turns any failure into ``ConfigError`` with one line naming the
key.
"""

from __future__ import annotations

import ipaddress
import json
import os
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from solbot.defaults import DEFAULT_STRATEGY
from solbot.infra.killswitch import KillFlag
from solbot.runtime.configfiles import (
    PROFILES,
    ConfigError,
    explicit_home,
    read_config_file,
    read_env_file,
    resolve_home,
)

__all__ = [  # with the names callers know from here (configfiles' re-exported)
    "ALERTS_DEFAULT",
    "LIVE_CONFIRMATION",
    "NOT_SETTINGS",
    "PROFILES",
    "ConfigError",
    "MarketSource",
    "Settings",
    "Severity",
    "is_loopback",
    "load_settings",
    "read_env_file",
    "resolve_home",
]

LIVE_CONFIRMATION = "real-money"


Severity = Literal["P0", "P1", "P2", "P3"]
ALERTS_DEFAULT: tuple[Severity, ...] = ("P0", "P1")


class MarketSource(StrEnum):
    SYNTHETIC = "synthetic"
    REPLAY = "replay"
    EXCHANGE = "exchange"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOLBOT_", extra="forbid", frozen=True, case_sensitive=False
    )

    home: Path = Path(".")
    profile: Literal["staging", "production", "dev"] = "dev"
    host: str = "127.0.0.1"
    # Host names the API answers to (besides the loopback names); empty: only those when
    # listening on loopback, any when listening beyond it (DNS-rebinding guard)
    api_allowed_hosts: list[str] = []
    port: int = Field(3001, ge=1, le=65535)
    api_token: SecretStr | None = None
    # requests a second (and the burst) answered without the token; the rest wait their
    # turn, up to 2 s, then 429 (``api.guard.Pacer``); 0: no pacing
    api_unauthenticated_rate: float = Field(50.0, ge=0, le=100_000, allow_inf_nan=False)

    market: MarketSource = MarketSource.SYNTHETIC
    replay_file: Path | None = None
    speed: float = Field(4.0, gt=0, le=100_000, description="bars per second (paper)")
    seed: int = Field(8, ge=0, lt=2**32)  # numpy seeds are unsigned 32-bit
    exchange: str | None = None
    exchange_url: str | None = None
    # live trading: real orders through ccxt (needs all of these)
    live: bool = False
    live_confirm: str | None = Field(
        None, description=f"must be {LIVE_CONFIRMATION!r} to send real orders"
    )
    exchange_api_key: SecretStr | None = None
    exchange_api_secret: SecretStr | None = None
    exchange_timeout_ms: int = Field(10_000, ge=100, le=120_000)
    # how long a signed request stays valid at the exchange (Binance ``rest-api.md`` "Timing
    # security": default 5000, "It is recommended to use a small recvWindow of 5000 or
    # less!"; ccxt sends 10000). An order whose answer was lost is looked up this long plus
    # 5 s before it is taken as absent: a shorter window is a shorter doubt.
    exchange_recv_window_ms: int = Field(5_000, ge=1_000, le=60_000)
    exchange_poll_seconds: float = Field(1.0, gt=0, le=60)
    # market data by websocket (ccxt.pro watch_ohlcv) where the exchange has it, REST for
    # history and gaps; with --exchange-url a stream needs its own URL (the emulator:
    # ws://127.0.0.1:PORT/stream/ws)
    exchange_stream: bool = True
    exchange_ws_url: str | None = None
    # our orders' trades pushed by the exchange's user data stream (Binance's WebSocket API,
    # ccxt.pro watch_my_trades) as well as polled: a fill is booked, and a bracket's stop
    # sent, without waiting for the order query; with --exchange-url at ws://<host>/ws-api/v3
    exchange_user_stream: bool = True
    # where the exchange has a dead man's switch (Kraken, Bybit, OKX): its timeout, renewed
    # every quarter of it while running
    exchange_dead_man_seconds: float = Field(60.0, ge=10, le=86_400)
    accept_exchange_state: bool = False
    reconcile_seconds: float = Field(60.0, ge=0, le=86_400)  # live: 0 = only at start
    # the exchange's test network (ccxt sandbox mode: Binance's testnet.binance.vision REST
    # and stream): no real money, so SOLBOT_LIVE_CONFIRM is not asked for
    exchange_sandbox: bool = False
    # every exchange answer of a live run appended to this file (JSON lines; no secrets):
    # a testnet rehearsal's answers become new fixtures (docs/testnet.md)
    exchange_record: Path | None = None
    # this bot's share of the host's request weight (Binance limits per IP): 0.5 each for
    # staging and production on one server
    exchange_weight_share: float = Field(1.0, gt=0, le=1)
    # protective stops are stop-limits this far beyond their trigger (Binance spot has no
    # stop-market); the same in backtests, paper and live
    stop_limit_offset: Decimal = Field(Decimal("0.005"), gt=0, lt=Decimal("0.2"))
    symbol: str = "SOL/USDT"
    # several symbols in one bot (paper): each trades its own slice of the capital (a
    # sleeve), e.g. SOLBOT_SYMBOLS=SOL/USDT,BTC/USDT,ETH/USDT; empty = just ``symbol``.
    # A replay of several symbols names its files with {base} and {quote}.
    symbols: list[str] = Field(default_factory=list)
    allocation: Literal["equal", "vol"] = "equal"  # vol: inverse volatility of daily returns
    calibration_days: int = Field(30, ge=5, le=365)  # vol: days measured before trading
    exposure_cap: Decimal = Field(Decimal("1"), gt=0, le=1)  # all positions / total equity
    timeframe: str = "1h"

    strategy: str = DEFAULT_STRATEGY
    # keyword parameters of the strategy, e.g. SOLBOT_STRATEGY_PARAMS='{"offset": 0.002}'
    strategy_params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    initial_cash: Decimal = Field(Decimal("10000"), gt=0, le=Decimal("1e12"))
    fee: Decimal = Field(Decimal("0.001"), ge=0, lt=1)
    slippage: Decimal = Field(Decimal("0.0005"), ge=0, lt=1)
    max_order_value: Decimal | None = Field(None, gt=0)

    cancel_on_stop: bool = True
    flatten_on_kill: bool = False
    daily_loss_limit: Decimal = Field(Decimal("0.05"), gt=0, lt=1)
    timezone: str = "UTC"
    stale_after_bars: float = Field(3.0, gt=0, le=10_000, allow_inf_nan=False)  # inf: no check

    database_url: str | None = None
    backup_to: str | None = None  # s3://bucket/prefix for `solbot backup` (the weekly timer)
    discord_webhook_url: SecretStr | None = None
    notify_fills: bool = False
    # control from Telegram (docs/operations.md "Telegram"): the bot's token from @BotFather;
    # only these chats and users are answered (both must match), e.g. 12345,67890
    telegram_bot_token: SecretStr | None = None
    telegram_chat_ids: list[int] = Field(default_factory=list)
    telegram_user_ids: list[int] = Field(default_factory=list)
    telegram_api_url: str = "https://api.telegram.org"  # the Bot API's base (tests: a local fake)
    # the quiet-bot alarm (runtime/quiet.py): P2 after this many live bars with no order while
    # trading (0: off); unset: derived from ``quiet_result``, a backtest's result.json of
    # this strategy and parameters (1.5 x its longest gap between orders), else off
    quiet_bars: int | None = Field(None, ge=0, le=1_000_000)
    quiet_result: Path | None = None
    # control from Discord's slash commands (docs/operations.md "Discord"): the application's
    # public key (hex, from the Developer Portal) checks each request's signature; only these
    # channels and people are obeyed (both must match). Registering the commands (``solbot
    # discord register``) also needs the application id and the bot token.
    discord_public_key: str | None = None
    discord_channel_ids: list[int] = Field(default_factory=list)
    discord_user_ids: list[int] = Field(default_factory=list)
    discord_application_id: str | None = None
    discord_bot_token: SecretStr | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    # the severities also sent to the allow-listed chats
    telegram_alerts: list[Severity] = Field(default_factory=lambda: list(ALERTS_DEFAULT))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # app.log: "internal" rotates by size (20 MB x 5); "logrotate" leaves it to
    # deploy/logrotate/solbot (weekly) and reopens the file when it has been moved
    log_rotation: Literal["internal", "logrotate"] = "internal"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings layers profile < file < .env < environment < command line itself
        # (it needs SOLBOT_HOME before it can find .env), so only init values are read here.
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _db_scheme(cls, v: str | None) -> str | None:
        scheme = (v or "sqlite").split("://", 1)[0].split("+", 1)[0].lower()
        if v is not None and ("://" not in v or scheme not in ("sqlite", "postgresql")):
            raise ValueError(
                f"unknown scheme {scheme!r} (sqlite:///path or postgresql://user@host/db)"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        from solbot.data.bars import DataError, timeframe_ms

        try:
            timeframe_ms(v)
        except DataError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("strategy_params", mode="before")
    @classmethod
    def _json_params(cls, v: object) -> object:
        if isinstance(v, str):  # from the environment / .env: a JSON object
            try:
                return json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object ({exc.msg})") from None
            except RecursionError:
                raise ValueError("not a JSON object (nested too deeply)") from None
        return v

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, v: object) -> object:
        if isinstance(v, str):  # from the environment / .env: bot.example.org,10.0.0.5
            return [p.strip().lower() for p in v.split(",") if p.strip()]
        return v

    @field_validator(
        "telegram_chat_ids",
        "telegram_user_ids",
        "telegram_alerts",
        "discord_channel_ids",
        "discord_user_ids",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().startswith("["):
            v = json.loads(v)  # a JSON list: [12345, -100678]
        if isinstance(v, str):  # from the environment / .env: 12345,-100678 or P0,P1
            return [p.strip().upper() for p in v.split(",") if p.strip()]
        if isinstance(v, int):  # one id (a TOML number, or pydantic-settings' JSON parse)
            return [v]
        return v

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbol_list(cls, v: object) -> object:
        if isinstance(v, str):  # from the environment / .env: SOL/USDT,BTC/USDT
            return [p.strip().upper() for p in v.split(",") if p.strip()]
        return v

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, v: list[str]) -> list[str]:
        for sym in v:
            base, _, quote = sym.partition("/")
            if not base or not quote or "/" in quote:
                raise ValueError(f"{sym!r} is not BASE/QUOTE")
        if len(set(v)) != len(v):
            raise ValueError("a symbol is listed twice")
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    # ---- second pass: combinations ----------------------------------------------------
    @model_validator(mode="after")
    def _cross(self) -> Settings:
        if self.market is MarketSource.REPLAY and self.replay_file is None:
            raise ValueError("replay_file: required when market = replay")
        several = len(self.trading_symbols) > 1
        if several and len({sym.partition("/")[2] for sym in self.trading_symbols}) > 1:
            raise ValueError("symbols: every symbol must have the same quote currency")
        if several and self.market is MarketSource.REPLAY and "{base}" not in str(self.replay_file):
            raise ValueError(
                "replay_file: with several symbols it must name each file with {base} "
                "(e.g. data/{base}_{quote}-1h.json)"
            )
        if self.market is MarketSource.EXCHANGE and not self.exchange:
            raise ValueError("exchange: required when market = exchange")
        if self.live:
            if self.market is not MarketSource.EXCHANGE or not self.exchange:
                raise ValueError("live: needs an exchange (--exchange NAME)")
            if not (
                self.exchange_api_key
                and self.exchange_api_key.get_secret_value()
                and self.exchange_api_secret
                and self.exchange_api_secret.get_secret_value()
            ):
                raise ValueError("exchange_api_key: live trading needs API key and secret")
            if self.live_confirm != LIVE_CONFIRMATION and not self.exchange_sandbox:
                raise ValueError(
                    f"live_confirm: set SOLBOT_LIVE_CONFIRM={LIVE_CONFIRMATION} to send real orders"
                )
            if self.max_order_value is None:
                raise ValueError("max_order_value: required for live trading")
        from solbot.strategies import create

        try:
            create(self.strategy, **self.strategy_params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"strategy: {exc}") from None
        if self.telegram_bot_token is not None and not (
            self.telegram_chat_ids and self.telegram_user_ids
        ):
            raise ValueError(
                "telegram_user_ids: a Telegram token needs the chat and user ids to answer "
                "(SOLBOT_TELEGRAM_CHAT_IDS, SOLBOT_TELEGRAM_USER_IDS)"
            )
        if self.discord_public_key is not None:
            key = self.discord_public_key
            if len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
                raise ValueError("discord_public_key: 64 hex characters (the Developer Portal's)")
            if not (self.discord_channel_ids and self.discord_user_ids):
                raise ValueError(
                    "discord_user_ids: a Discord public key needs the channel and user ids to "
                    "obey (SOLBOT_DISCORD_CHANNEL_IDS, SOLBOT_DISCORD_USER_IDS)"
                )
        if not self.telegram_api_url.startswith(("https://", "http://")):
            raise ValueError("telegram_api_url: must be an http(s) URL")
        if not is_loopback(self.host) and self.api_token is None:
            raise ValueError(f"api_token: required to listen on non-loopback address {self.host!r}")
        if self.api_token is not None and len(self.api_token.get_secret_value()) < 16:
            raise ValueError("api_token: must be at least 16 characters")
        return self

    # ---- derived values ----------------------------------------------------------------
    @property
    def trading_symbols(self) -> list[str]:
        return list(self.symbols) or [self.symbol]

    def replay_file_for(self, symbol: str) -> Path:
        assert self.replay_file is not None
        base, _, quote = symbol.partition("/")
        return Path(str(self.replay_file).replace("{base}", base).replace("{quote}", quote))

    # ---- derived paths -----------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def kill_switch(self) -> KillFlag:
        return KillFlag.in_data_dir(self.data_dir)

    @property
    def kill_flag(self) -> Path:
        return self.kill_switch.path

    def allowed_hosts(self) -> frozenset[str] | None:
        """The Host names the API accepts; None: any."""
        if self.api_allowed_hosts or is_loopback(self.host):
            return frozenset(
                {"127.0.0.1", "localhost", "::1", self.host.lower(), *self.api_allowed_hosts}
            )
        return None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'solbot.sqlite'}"

    def secrets(self) -> list[str]:
        out = []
        for s in (
            self.api_token,
            self.discord_webhook_url,
            self.telegram_bot_token,
            self.discord_bot_token,
            self.exchange_api_key,
            self.exchange_api_secret,
        ):
            if s is not None and s.get_secret_value():
                out.append(s.get_secret_value())
        if self.database_url and "@" in self.database_url:
            userinfo = self.database_url.split("://", 1)[-1].split("@", 1)[0]
            if ":" in userinfo:
                out.append(userinfo.split(":", 1)[1])
        return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(
    home: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Precedence: overrides (command line) > environment > .env > config file > profile;
    for the home: ``--home`` > ``SOLBOT_HOME`` > the config file > the profile's."""
    env = dict(os.environ if environ is None else environ)
    values = read_config_file(config_file)
    explicit = explicit_home(home, values, env)
    where = explicit or Path(".")
    dotenv = read_env_file(where / ".env")
    layered = {**dotenv, **env}
    for key, value in layered.items():
        if key.upper().startswith("SOLBOT_") and key.upper() not in NOT_SETTINGS:
            values[key[7:].lower()] = value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    profile = str(values.get("profile", "dev"))
    for key, value in PROFILES.get(profile, {}).items():
        if key != "home":
            values.setdefault(key, value)
    values["home"] = explicit or PROFILES.get(profile, {}).get("home", where)
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    return settings.model_copy(update={"home": Path(settings.home).resolve()})


# read before the settings exist (the home) or by test hooks (solbot/failpoints.py)
NOT_SETTINGS = frozenset({"SOLBOT_HOME", "SOLBOT_FAILPOINTS"})


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc and ":" in msg:  # cross-field errors name their key themselves
        return f"config: {msg}"
    if err["type"] == "extra_forbidden":
        return f"config: unknown key {loc!r}"
    return f"config: {loc}: {msg}" if loc else f"config: {msg}"
