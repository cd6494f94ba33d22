"""deploy/aws: the example IAM policies are valid (moto's IAM policy validator), use no
wildcard actions or resources, and grant exactly the API calls our code makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / "deploy" / "aws"
SRC = REPO / "src" / "solbot" / "ops"
# boto3 client calls → the IAM action each needs (HeadObject is authorised as GetObject)
NEEDS = {
    'get_paginator("get_parameters_by_path")': "ssm:GetParametersByPath",
    "upload_file": "s3:PutObject",
    "head_object": "s3:GetObject",
    "download_file": "s3:GetObject",
    'get_paginator("list_objects_v2")': "s3:ListBucket",
    "delete_object": "s3:DeleteObject",
}


def actions(doc: dict) -> set[str]:
    out: set[str] = set()
    for st in doc["Statement"]:
        acts = st["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out


def used_calls() -> set[str]:
    text = (SRC / "secrets.py").read_text() + (SRC / "backup.py").read_text()
    found = {call for call in NEEDS if call in text}
    unknown = set(re.findall(r"client\.(\w+)\(", text)) - {c.split("(")[0] for c in NEEDS}
    assert not unknown, f"AWS calls without a mapped IAM action: {unknown}"
    return found


def test_policies_grant_exactly_what_the_code_calls_and_nothing_wild() -> None:
    deploy = json.loads((AWS / "deploy-role-policy.json").read_text())
    backup = json.loads((AWS / "backup-role-policy.json").read_text())
    trust = json.loads((AWS / "github-oidc-trust.json").read_text())
    for doc in (deploy, backup):
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow"
            for a in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
                assert "*" not in a, a
            for r in [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]:
                assert r != "*" and not r.endswith(":*"), r
    needed = {NEEDS[c] for c in used_calls()}
    granted = (actions(deploy) | actions(backup)) - {"kms:Decrypt"}
    assert granted == needed
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    assert cond["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert ":environment:production" in cond["token.actions.githubusercontent.com:sub"]


def test_policies_are_accepted_by_iam() -> None:
    moto = pytest.importorskip("moto", reason="moto is not installed")
    import boto3

    with moto.mock_aws():
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("deploy-role-policy", "backup-role-policy"):
            iam.create_policy(PolicyName=name, PolicyDocument=(AWS / f"{name}.json").read_text())
        iam.create_role(
            RoleName="solbot-deploy-production",
            AssumeRolePolicyDocument=(AWS / "github-oidc-trust.json").read_text(),
        )
        with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
            iam.create_policy(
                PolicyName="broken",
                PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}
                ),
            )
