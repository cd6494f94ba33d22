"""The mark a successful ``solbot backup create`` leaves in the data directory: when, and
which archive. The metric ``solbot_backup_last_success_timestamp_seconds``, the MissedBackup
alert and ``solbot doctor`` read it; ``ops.backup`` writes it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

LAST_SUCCESS = "backup-last-success"


def mark_success(data_dir: Path, at: datetime, archive: str) -> None:
    (data_dir / LAST_SUCCESS).write_text(
        json.dumps({"at": at.timestamp(), "archive": archive}) + "\n"
    )


def last_success(data_dir: Path) -> float | None:
    """Epoch seconds of the last successful backup of this home, None when there is none."""
    try:
        return float(json.loads((data_dir / LAST_SUCCESS).read_text())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
