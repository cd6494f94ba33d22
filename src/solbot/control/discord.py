"""Control from Discord: the command layer (``control.commands``) as slash commands.

The mechanism is Discord's **interactions endpoint**: Discord POSTs each slash command and
button press to one HTTPS URL of ours and we answer in the HTTP response. Chosen over a
gateway bot because it keeps no long-lived connection to supervise, needs no bot library and
no privileged intents, and each request is signed, so a request that does not come from
Discord is refused before anything is parsed. Its cost: Discord must reach the URL, so the
operator puts a reverse proxy with TLS in front of the one path
``/api/discord/interactions`` (``docs/operations.md`` "Discord").

What this relies on, from Discord's developer documentation:

* "Receiving and Responding" > "Security and Authorization": every request carries
  ``X-Signature-Ed25519`` (hex) and ``X-Signature-Timestamp``; the signature is Ed25519 over
  the timestamp followed by the raw body, checked with the application's public key
  (hex); a request that fails is answered 401 (Discord sends such requests on purpose when
  the URL is saved, to check that we refuse them). The same check as Discord's own
  ``discord-interactions`` library's ``verify_key`` (tests compare the two).
* "Interaction Object": ``type`` 1 PING, 2 APPLICATION_COMMAND (``data.name``,
  ``data.options[].value``), 3 MESSAGE_COMPONENT (``data.custom_id``); the person in
  ``member.user`` (in a server) or ``user`` (in a DM); ``channel_id``.
* "Interaction Response Object": ``type`` 1 PONG, 4 CHANNEL_MESSAGE_WITH_SOURCE, 7
  UPDATE_MESSAGE; ``data.content`` (up to 2000 characters), ``data.flags`` 64 (EPHEMERAL:
  only the sender sees it), ``data.components`` (an action row, type 1, of buttons, type 2,
  with ``custom_id`` up to 100 characters). The answer must come within 3 seconds.
* "Application Commands" > "Bulk Overwrite Global Application Commands":
  ``PUT /applications/{application.id}/commands`` with ``Authorization: Bot <token>``
  (``solbot discord register``).

The allow-list is the Telegram one's: the channel and the person must both be listed. Anyone
else is answered "Not allowed." where only they see it (Discord shows a failure for an
unanswered interaction) and nothing is done; it is logged (ids only).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solbot.control.commands import VERBS, Caller, Commands, Reply

log = logging.getLogger(__name__)

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT = 1, 2, 3
PONG, CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE = 1, 4, 7
EPHEMERAL = 1 << 6
CONTENT_MAX = 2000
CONFIRM_SECONDS = 60.0
TIMESTAMP_SKEW = 300.0  # s: an older (or later) signed timestamp is a replay, refused


def verify(public_key_hex: str, signature_hex: str, timestamp: str, body: bytes) -> bool:
    """Ed25519 over ``timestamp + body`` with the application's public key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), timestamp.encode() + body)
    except (ValueError, InvalidSignature):
        return False
    return True


def command_definitions() -> list[dict[str, Any]]:
    """The slash commands to register: one per verb; ``/kill`` takes an optional reason."""
    out: list[dict[str, Any]] = []
    for v in VERBS.values():
        cmd: dict[str, Any] = {"name": v.name, "type": 1, "description": v.summary[:100]}
        if v.name == "kill":
            cmd["options"] = [
                {"type": 3, "name": "reason", "description": "why", "required": False}
            ]
        out.append(cmd)
    return out


@dataclass(slots=True)
class _Pending:
    verb: str
    text: str
    user: str
    until: float


class DiscordControl:
    def __init__(
        self,
        commands: Commands,
        public_key_hex: str,
        users: frozenset[int],
        channels: frozenset[int],
    ) -> None:
        self.commands = commands
        self.public_key = public_key_hex
        self.users, self.channels = users, channels
        self.pending: dict[str, _Pending] = {}
        self.refused = self.ignored = 0

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """One request to the interactions endpoint: (HTTP status, JSON answer). The
        signature is checked before the body is parsed."""
        sig = headers.get("x-signature-ed25519", "")
        ts = headers.get("x-signature-timestamp", "")
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= TIMESTAMP_SKEW
        if not (sig and fresh and verify(self.public_key, sig, ts, body)):
            self.refused += 1
            return 401, {"detail": "invalid request signature"}
        try:
            interaction = json.loads(body)
        except ValueError:
            return 400, {"detail": "not JSON"}
        if not isinstance(interaction, dict):
            return 400, {"detail": "not an interaction"}
        kind = interaction.get("type")
        if kind == PING:
            return 200, {"type": PONG}
        user = str(((interaction.get("member") or {}).get("user") or interaction.get("user")
                    or {}).get("id", ""))  # fmt: skip
        channel = str(interaction.get("channel_id", ""))
        if not (user.isdigit() and int(user) in self.users and channel.isdigit()
                and int(channel) in self.channels):  # fmt: skip
            self.ignored += 1
            log.warning("discord: ignored an interaction from user %s in channel %s "
                        "(not allow-listed)", user or "?", channel or "?")  # fmt: skip
            return 200, _message("Not allowed.", ephemeral=True)
        data = interaction.get("data") if isinstance(interaction.get("data"), dict) else {}
        assert isinstance(data, dict)
        if kind == APPLICATION_COMMAND:
            return 200, self._command(data, user)
        if kind == MESSAGE_COMPONENT:
            return 200, self._button(str(data.get("custom_id", "")), user)
        return 400, {"detail": f"interaction type {kind!r} is not handled"}

    def _command(self, data: dict[str, Any], user: str) -> dict[str, Any]:
        text = f"/{data.get('name', '')}"
        for opt in data.get("options") or []:
            if isinstance(opt, dict) and opt.get("name") == "reason" and opt.get("value"):
                text += f" {opt['value']}"
        reply = self.commands.run(text, Caller("discord", user))
        if reply.confirm is None:
            return _message(reply.text)
        nonce = secrets.token_hex(4)
        now = time.monotonic()
        self.pending = {k: p for k, p in self.pending.items() if p.until > now}
        self.pending[nonce] = _Pending(reply.confirm, text, user, now + CONFIRM_SECONDS)
        buttons = [
            {"type": 2, "style": 4, "label": f"Yes, {reply.confirm}", "custom_id": f"yes:{nonce}"},
            {"type": 2, "style": 2, "label": "No", "custom_id": f"no:{nonce}"},
        ]
        return _message(reply.text, components=[{"type": 1, "components": buttons}])

    def _button(self, custom_id: str, user: str) -> dict[str, Any]:
        answer, _, nonce = custom_id.partition(":")
        p = self.pending.get(nonce)
        if p is not None and p.user != user:
            return _message("Only the person who asked can answer.", ephemeral=True)
        self.pending.pop(nonce, None)
        if p is None or p.until < time.monotonic():
            done = Reply("That question has expired; send the command again.")
        elif answer == "yes":
            done = self.commands.run(p.text, Caller("discord", user), confirmed=True)
        else:
            done = Reply(f"/{p.verb} not done.")
        return {"type": UPDATE_MESSAGE, "data": {"content": done.text[:CONTENT_MAX],
                                                 "components": []}}  # fmt: skip


def _message(
    text: str, ephemeral: bool = False, components: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"content": text[:CONTENT_MAX], "allowed_mentions": {"parse": []}}
    if ephemeral:
        data["flags"] = EPHEMERAL
    if components is not None:
        data["components"] = components
    return {"type": CHANNEL_MESSAGE_WITH_SOURCE, "data": data}


def register_commands(api_url: str, application_id: str, bot_token: str) -> tuple[int, str]:
    """Bulk-overwrite the application's global slash commands with ours; (HTTP status, one
    line). The token goes in the ``Authorization`` header only, never into the line."""
    import httpx

    url = f"{api_url.rstrip('/')}/applications/{application_id}/commands"
    try:
        r = httpx.put(
            url,
            json=command_definitions(),
            headers={"Authorization": f"Bot {bot_token}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        return 0, f"Discord unreachable ({type(exc).__name__})"
    if r.status_code == 200:
        return 200, f"{len(r.json())} slash commands registered"
    return r.status_code, f"Discord refused the commands: {r.status_code} {r.text[:200]}"
