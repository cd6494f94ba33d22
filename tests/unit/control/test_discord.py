"""Discord's interactions endpoint: our signature check against Discord's own library
(``discord-interactions``' ``verify_key``, over PyNaCl), our answer types against its
constants, and the endpoint's rules fed signed requests directly (no network)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

di = pytest.importorskip("discord_interactions", reason="discord-interactions (a dev dependency)")
nacl_signing = pytest.importorskip("nacl.signing")

from solbot.control import discord as dc  # noqa: E402
from solbot.control.commands import Commands  # noqa: E402
from tests.unit.control.test_telegram_shapes import StubView  # noqa: E402

USER, OTHER, STRANGER, CHANNEL = 111, 222, 666, 999
KEY = nacl_signing.SigningKey(bytes(range(32)))  # the application's key pair (Discord's side)
PUBLIC = KEY.verify_key.encode().hex()


def signed(
    interaction: dict[str, Any], key: Any = KEY, ts: int | None = None
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(interaction).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    sig = key.sign(stamp.encode() + body).signature.hex()
    return {"x-signature-ed25519": sig, "x-signature-timestamp": stamp}, body


def command(name: str, user: int = USER, channel: int = CHANNEL, **opts: str) -> dict[str, Any]:
    options = [{"name": k, "type": 3, "value": v} for k, v in opts.items()]
    return {"type": 2, "id": "1", "token": "t", "channel_id": str(channel),
            "member": {"user": {"id": str(user), "username": "u"}},
            "data": {"id": "9", "name": name, "type": 1, "options": options}}  # fmt: skip


def press(custom_id: str, user: int = USER) -> dict[str, Any]:
    data = {"custom_id": custom_id, "component_type": 2}
    return {"type": 3, "id": "2", "token": "t", "channel_id": str(CHANNEL),
            "user": {"id": str(user)}, "data": data}  # fmt: skip


def endpoint() -> tuple[dc.DiscordControl, StubView]:
    view = StubView()
    return dc.DiscordControl(Commands(view), PUBLIC, frozenset({USER, OTHER}),  # type: ignore[arg-type]
                             frozenset({CHANNEL})), view  # fmt: skip


def test_our_signature_check_agrees_with_discords_own_verify_key():
    headers, body = signed({"type": 1})
    sig, ts = headers["x-signature-ed25519"], headers["x-signature-timestamp"]
    other = nacl_signing.SigningKey(bytes(range(1, 33))).verify_key.encode().hex()
    cases = [
        (body, sig, ts, PUBLIC),  # genuine
        (body + b" ", sig, ts, PUBLIC),  # the body changed
        (body, sig, str(int(ts) + 1), PUBLIC),  # the timestamp changed
        (body, sig, ts, other),  # another application's key
        (body, "00" * 64, ts, PUBLIC),  # a forged signature
        (body, "zz", ts, PUBLIC),  # not hex
    ]
    got = [dc.verify(key, s, t, b) for b, s, t, key in cases]
    theirs = [di.verify_key(b, s, t, key) for b, s, t, key in cases]
    assert got == theirs == [True, False, False, False, False, False]


def test_our_answer_types_are_discords():
    assert (dc.PING, dc.APPLICATION_COMMAND, dc.MESSAGE_COMPONENT) == (
        di.InteractionType.PING, di.InteractionType.APPLICATION_COMMAND,
        di.InteractionType.MESSAGE_COMPONENT,
    )  # fmt: skip
    assert (dc.PONG, dc.CHANNEL_MESSAGE_WITH_SOURCE, dc.UPDATE_MESSAGE) == (
        di.InteractionResponseType.PONG, di.InteractionResponseType.CHANNEL_MESSAGE_WITH_SOURCE,
        di.InteractionResponseType.UPDATE_MESSAGE,
    )  # fmt: skip
    assert dc.EPHEMERAL == di.InteractionResponseFlags.EPHEMERAL


def test_the_slash_commands_follow_discords_naming_rules():
    names = re.compile(r"^[-_a-z0-9]{1,32}$")  # "Application Command Naming": lower case
    defs = dc.command_definitions()
    assert [d["name"] for d in defs][:2] == ["status", "account"] and len(defs) == 10
    assert all(names.match(d["name"]) and 1 <= len(d["description"]) <= 100 for d in defs)


def test_a_ping_is_ponged_and_a_forged_stale_or_unsigned_request_is_refused_unread():
    ep, view = endpoint()
    assert ep.handle(*signed({"type": 1})) == (200, {"type": dc.PONG})
    forger = nacl_signing.SigningKey(bytes(range(2, 34)))
    for headers, body in (
        signed(command("kill"), key=forger),
        signed(command("kill"), ts=int(time.time()) - 3600),  # a replay an hour later
        ({}, json.dumps(command("kill")).encode()),
        ({**signed(command("pause"))[0]}, json.dumps(command("kill")).encode()),  # swapped body
    ):
        status, _ = ep.handle(headers, body)
        assert status == 401
    assert not view.calls and ep.refused == 4


def test_only_the_allow_listed_are_obeyed_and_only_the_asker_confirms():
    ep, view = endpoint()
    for who, where in ((STRANGER, CHANNEL), (USER, 123)):
        status, answer = ep.handle(*signed(command("pause", who, where)))
        assert status == 200 and answer["data"]["flags"] == dc.EPHEMERAL
        assert answer["data"]["content"] == "Not allowed."
    assert not view.calls
    _, answer = ep.handle(*signed(command("pause")))
    assert answer["type"] == dc.CHANNEL_MESSAGE_WITH_SOURCE and ("pause", None) in view.calls
    _, asked = ep.handle(*signed(command("kill", reason="spread too wide")))
    row = asked["data"]["components"][0]
    assert row["type"] == 1 and [b["type"] for b in row["components"]] == [2, 2]
    yes = row["components"][0]["custom_id"]
    assert len(yes) <= 100 and not [c for c in view.calls if c[0] == "kill"]
    _, answer = ep.handle(*signed(press(yes, OTHER)))
    assert "Only the person who asked" in answer["data"]["content"]
    _, answer = ep.handle(*signed(press(yes, USER)))
    assert answer["type"] == dc.UPDATE_MESSAGE and answer["data"]["components"] == []
    assert ("kill", "spread too wide") in view.calls
    kinds = [d["via"] for k, d in view.calls if k == "command"]
    assert set(kinds) == {"discord"}
