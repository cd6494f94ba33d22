"""Configuration: layering, two-pass validation, one-line errors, secrets kept out of logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from solbot.infra.logs import RedactSecrets
from solbot.runtime.config import ConfigError, load_settings


def test_defaults_and_home_layout(tmp_path):
    s = load_settings(tmp_path, environ={})
    assert (s.port, s.host, s.profile) == (3001, "127.0.0.1", "dev")
    assert s.kill_flag == tmp_path / "data" / "kill-switch.flag"
    assert s.db_url == f"sqlite:///{tmp_path / 'data' / 'solbot.sqlite'}"
    assert s.logs_dir == tmp_path / "logs"


def test_profiles_set_port_and_home():
    s = load_settings(None, environ={"SOLBOT_PROFILE": "staging"})
    assert s.port == 3000 and s.home == Path("/opt/solbot")
    p = load_settings(None, environ={"SOLBOT_PROFILE": "production"})
    assert p.port == 3001 and p.home == Path("/opt/solbot-prod")


def test_precedence_cli_over_env_over_dotenv_over_file(tmp_path):
    (tmp_path / "bot.toml").write_text('port = 4000\nspeed = 2.0\nsymbol = "ETH/USDT"\n')
    (tmp_path / ".env").write_text("# comment\nSOLBOT_PORT=4001\nexport SOLBOT_SPEED='3'\n")
    s = load_settings(tmp_path, tmp_path / "bot.toml", environ={"SOLBOT_SPEED": "5"})
    assert (s.port, s.speed, s.symbol) == (4001, 5.0, "ETH/USDT")
    s2 = load_settings(tmp_path, tmp_path / "bot.toml", overrides={"port": 4002}, environ={})
    assert s2.port == 4002


def test_home_precedence_command_line_env_config_file_profile(tmp_path, monkeypatch):
    """``home`` in the config file overrode ``--home``: ``solbot kill --home H`` wrote its flag
    under H while the bot ran in the file's home. Now --home > SOLBOT_HOME > the config file >
    the profile's, for the bot and the kill command alike (``resolve_home``)."""
    from solbot.runtime.config import resolve_home

    h1, h2, h3 = (tmp_path / n for n in ("cli", "file", "env"))
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'home = "{h2}"\nport = 4000\n')
    (h2.mkdir(), (h2 / ".env").write_text("SOLBOT_PORT=4005\n"))
    monkeypatch.chdir(tmp_path)
    cases = [
        (h1, {}, h1),
        (h1, {"SOLBOT_HOME": str(h3)}, h1),
        (None, {"SOLBOT_HOME": str(h3)}, h3),
        (None, {}, h2),
        (None, {"SOLBOT_PROFILE": "production"}, h2),  # the file's home beats the profile's
    ]
    for home, env, want in cases:
        s = load_settings(home, cfg, environ=env)
        assert s.home == want.resolve() == resolve_home(home, cfg, env), (home, env)
        assert s.kill_flag == want.resolve() / "data" / "kill-switch.flag"
    assert load_settings(None, cfg, environ={}).port == 4005  # .env of the file's home
    assert resolve_home(None, None, {"SOLBOT_PROFILE": "staging"}) == Path("/opt/solbot")
    assert resolve_home(None, None, {}) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SOLBOT_PORT": "70000"}, "config: port: Input should be less than or equal to 65535"),
        ({"SOLBOT_DAILY_LOSS_LIMIT": "1.5"}, "config: daily_loss_limit:"),
        ({"SOLBOT_HOST": "10.0.0.5"}, "config: api_token: required to listen on non-loopback"),
        ({"SOLBOT_API_TOKEN": "short"}, "config: api_token: must be at least 16 characters"),
        ({"SOLBOT_MARKET": "exchange"}, "config: exchange: required when market = exchange"),
        ({"SOLBOT_TIMEFRAME": "7q"}, "config: timeframe: unknown timeframe"),
        ({"SOLBOT_NOPE": "1"}, "config: unknown key 'nope'"),
        ({"SOLBOT_SEED": "-1"}, "config: seed: Input should be greater than or equal to 0"),
        ({"SOLBOT_INITIAL_CASH": "1e21"}, "config: initial_cash: Input should be less than"),
        ({"SOLBOT_STALE_AFTER_BARS": "inf"}, "config: stale_after_bars: Input should be a finite"),
        ({"SOLBOT_DATABASE_URL": "foo://x"}, "config: database_url: unknown scheme 'foo'"),
        ({"SOLBOT_STRATEGY": "nope"}, "config: strategy: unknown strategy 'nope'"),
        (
            {"SOLBOT_STRATEGY": "ladder", "SOLBOT_STRATEGY_PARAMS": '{"nope": 1}'},
            "config: strategy: ladder: unknown parameters ['nope']",
        ),
        (
            {"SOLBOT_STRATEGY": "ladder", "SOLBOT_STRATEGY_PARAMS": '{"offset": 0.4'},
            "config: strategy_params: not a JSON object",
        ),
        (  # exited 1 (RecursionError)
            {"SOLBOT_STRATEGY_PARAMS": "[" * 100_000},
            "config: strategy_params: not a JSON object (nested too deeply)",
        ),
    ],
)
def test_bad_values_give_one_line_naming_the_key(tmp_path, env, message):
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path, environ=env)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_strategy_params_from_env_or_config_file_reach_the_strategy(tmp_path):
    s = load_settings(
        tmp_path,
        environ={"SOLBOT_STRATEGY": "ladder", "SOLBOT_STRATEGY_PARAMS": '{"offset": 0.001}'},
    )
    assert s.strategy_params == {"offset": 0.001}
    (tmp_path / "bot.toml").write_text('strategy = "ladder"\n[strategy_params]\npatience = 2\n')
    f = load_settings(tmp_path, tmp_path / "bot.toml", environ={})
    assert f.strategy_params == {"patience": 2}


def test_bad_dotenv_and_config_file_lines(tmp_path):
    (tmp_path / ".env").write_text("SOLBOT_PORT\n")
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        load_settings(tmp_path, environ={})
    (tmp_path / ".env").unlink()
    (tmp_path / "c.toml").write_text("port = = 1")
    with pytest.raises(ConfigError, match="config file"):
        load_settings(tmp_path, tmp_path / "c.toml", environ={})
    # random bytes exited 1 (UnicodeDecodeError): one line naming the file (and the line)
    (tmp_path / ".env").write_bytes(b"SOLBOT_PORT=4000\n\xff\xfe garbage\n")
    with pytest.raises(ConfigError, match=r"\.env:2: not UTF-8 text"):
        load_settings(tmp_path, environ={})
    (tmp_path / ".env").write_bytes(b"SOLBOT_PORT=4000\x00\n")
    with pytest.raises(ConfigError, match=r"\.env:1: a NUL byte"):
        load_settings(tmp_path, environ={})
    (tmp_path / ".env").unlink()
    (tmp_path / "c.toml").write_bytes(b"port = 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"config file .*c\.toml"):
        load_settings(tmp_path, tmp_path / "c.toml", environ={})


def test_secrets_are_redacted_from_log_records_and_never_shown(tmp_path, caplog):
    token = "tok-0123456789abcdef"
    s = load_settings(
        tmp_path,
        environ={"SOLBOT_API_TOKEN": token, "SOLBOT_DISCORD_WEBHOOK_URL": "https://x/y/zsecret"},
    )
    assert token not in repr(s) and token not in str(s.model_dump())
    logger = logging.getLogger("redact-test")
    logger.addFilter(RedactSecrets(s.secrets()))
    with caplog.at_level(logging.INFO, logger="redact-test"):
        logger.info("token=%s url=%s", token, "https://x/y/zsecret")
        try:
            raise RuntimeError(f"boom {token}")
        except RuntimeError:
            logger.exception("failed")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text and "zsecret" not in text and text.count("***") >= 3


def test_market_data_staleness_threshold_follows_the_market(tmp_path):
    from solbot.bot import build_bot

    paced = build_bot(load_settings(tmp_path, environ={"SOLBOT_SPEED": "2"})).view
    assert paced is not None
    assert paced.stale_after_seconds() == 5.0  # 3 bars at 2 bars/s is 1.5 s: floor of 5 s
    live = build_bot(
        load_settings(tmp_path, environ={"SOLBOT_MARKET": "exchange", "SOLBOT_EXCHANGE": "binance"})
    ).view
    assert live is not None
    assert live.stale_after_seconds() == 3600 * 1.5 + 30  # 1h bars


def test_unreadable_env_file_is_a_one_line_config_error(tmp_path):
    from solbot.runtime.config import ConfigError, load_settings

    (tmp_path / ".env").mkdir()  # unreadable as a file, whoever we are
    with pytest.raises(ConfigError, match=r"\.env: .*the bot's user must be able to read it"):
        load_settings(tmp_path, environ={})
