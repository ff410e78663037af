"""Technical tokens are not personal data."""

from __future__ import annotations

import pytest

from gateway.pii.engine import Analyzer
from gateway.pii.ner import suppressed
from tests.unit.pii.conftest import found

TECH = [
    "Deploy the service to EKS and store artefacts in S3.",
    "Use an m5.large or c6i.2xlarge instance with 4 vCPUs.",
    "Upgrade from v1.27.3 to 1.28.0 and pin numpy==1.26.4.",
    "The commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b fixed it.",
    "Request 123e4567-e89b-12d3-a456-426614174000 failed at 2024-01-15T10:32:00Z.",
    "Listen on 0.0.0.0:8080, proxy to 10.0.3.17 and 127.0.0.1.",
    "```\nport = 543212345\nuser_id = 4111111111111111\n```",
    "Set `timeout_ms=1234567890` and retry 3 times.",
    "Run kubectl get pods -n kube-system on the GKE cluster in Terraform.",
    "ami-0abcdef1234567890 in vpc-0a1b2c3d subnet-12345678",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Between 2019 2020 2021 the error rate fell to 0.03 percent.",
]


@pytest.mark.parametrize("text", TECH)
def test_technical_text_has_no_pattern_findings(patterns: Analyzer, text: str) -> None:
    assert found(patterns, text) == []


@pytest.mark.parametrize(
    "span", ["S3", "EKS", "m5.large", "Kubernetes", "v1.2.3", "user_id", "GKE", "us-east-1a"]
)
def test_technical_spans_are_suppressed_as_names(span: str) -> None:
    assert suppressed(span)


@pytest.mark.parametrize("span", ["John Smith", "Berlin", "María José García"])
def test_names_are_not_suppressed(span: str) -> None:
    assert not suppressed(span)


def test_ner_finds_names_and_places_but_not_cloud_services(full: Analyzer) -> None:
    text = "John Smith moved to Berlin. He deploys to EKS and S3 on Kubernetes."
    got = found(full, text)
    assert ("PERSON", "John Smith") in got
    assert ("LOCATION", "Berlin") in got
    assert not {"EKS", "S3", "Kubernetes"} & {v for _, v in got}


def test_entity_filter_limits_ner_and_cue_names(full: Analyzer) -> None:
    text = "My name is John Smith and I live in Berlin."
    [only_places] = full.analyze([text], frozenset({"LOCATION"}))
    assert {f.entity_type for f in only_places} == {"LOCATION"}
    [only_people] = full.analyze([text], frozenset({"PERSON"}))
    assert {f.entity_type for f in only_people} == {"PERSON"}


# A coding agent's instructions (Claude Code's system prompt and tool documentation are of this
# kind): the name model took the capitalised tool names and verbs for people, and joined a
# heading to the next line, so tool names reached the backend as placeholders.
INSTRUCTIONS = """# Environment
You are working inside a sandboxed checkout.

## Using the tools
- **metadata**: Merge the new keys into the existing ones.
- Call `TaskGet` before you update a task; invoke Workflow to run many at once.
Caveat: scripts run headless, so Wrote files stay where they were written.
Find them again with Glob, then Edit them in place.
"""


def test_instructions_lose_no_tool_name_or_heading_to_the_name_model(full: Analyzer) -> None:
    assert found(full, INSTRUCTIONS) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please forward this to Smith before Friday.", "Smith"),  # a census surname, alone
        ("Mark approved the change.", "Mark"),  # a census first name, alone
        ("Anna Kowalczyk\nsigned the form.", "Anna Kowalczyk"),  # a name, then a line break
        ("`TaskGet` aside, John Smith signed.", "John Smith"),
    ],
)
def test_lone_and_full_names_are_still_found(full: Analyzer, text: str, name: str) -> None:
    assert ("PERSON", name) in found(full, text)
