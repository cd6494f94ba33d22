"""The kill-switch flag's one owner: written whole, one line, read back the same."""

from __future__ import annotations

from pathlib import Path

from solbot.infra.killswitch import REASON_MAX, engage, flag_reason, single_line


def test_a_reason_with_newlines_cannot_forge_a_log_line_and_is_length_limited(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "data" / "kill-switch.flag"
    forged = "ops\n2026-12-01 10:00:00 INFO solbot: all good\r\x1b[2Jx"
    engage(flag, forged)
    text = flag.read_text()
    assert text.count("\n") == 1 and "\r" not in text and "\x1b" not in text
    assert flag_reason(flag) == "ops 2026-12-01 10:00:00 INFO solbot: all good [2Jx"
    engage(flag, "y" * 10_000)
    assert len(flag_reason(flag) or "") == REASON_MAX
    assert not list(flag.parent.glob("*.tmp"))  # renamed over the flag, nothing left


def test_a_hand_written_flag_reads_as_one_line_and_an_absent_one_as_none(tmp_path: Path) -> None:
    flag = tmp_path / "kill-switch.flag"
    assert flag_reason(flag) is None
    flag.write_text("first line\nsecond line\n")  # `echo ... > flag` by hand
    assert flag_reason(flag) == "first line second line"
    flag.write_text("")
    assert flag_reason(flag) == ""
    assert single_line("  a \t b  ") == "a b"
