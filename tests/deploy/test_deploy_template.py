"""deploy/template.yaml, checked offline the way CloudFormation would see it.

SAM resources are first translated to plain CloudFormation with aws-sam-translator (Python
API, no AWS call: an empty managed-policy map, region from the env), then linted with cfn-lint
(which, on the untranslated template, cannot see inside ``AWS::Serverless::*`` resources), then
checked for least privilege. Deliberately broken copies prove each layer catches its errors.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.samples import EVENT_TYPES, make_stream_record

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
PARAMETERS = {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/notifier:test"}
#: Account-level SES reads: these actions have no resource type, "*" is the only valid Resource.
STAR_RESOURCE_ALLOWED = {"ses:GetAccount", "ses:GetSendQuota"}
PAYLOAD_LIMIT = 6 * 1024 * 1024
RECORD_BYTES = 1280  # ~1.25 KB per stream record (FIELD-NOTES baseline)
STREAM_RETENTION_S = 24 * 3600


class _NoManagedPolicies:
    """The translator's managed-policy loader, offline (the template names no managed policy)."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(autouse=True)
def _offline_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="module")
def sam_source() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


@pytest.fixture
def sam(sam_source: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """Factory: a fresh, mutable copy of the SAM template."""
    return lambda: copy.deepcopy(sam_source)


def translate(sam_doc: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    cfn: dict[str, Any] = transform(copy.deepcopy(sam_doc), PARAMETERS, _NoManagedPolicies())
    return cfn


def lint(cfn: dict[str, Any]) -> list[str]:
    """cfn-lint errors and warnings as "RULE message @ path" lines."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(cfn), config=ManualArgs(regions=["us-east-1"]))
    return [
        f"{m.rule.id} {m.message} @ {'/'.join(map(str, m.path))}"
        for m in matches
        if m.rule.id[0] in "EW"
    ]


def _statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props["PolicyDocument"])
        for doc in docs:
            for st in doc["Statement"]:
                yield name, st


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_findings(cfn: dict[str, Any]) -> list[str]:
    """Least-privilege violations: wildcard actions, "*" resources, managed policies."""
    found: list[str] = []
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role" and res["Properties"].get("ManagedPolicyArns"):
            found.append(f"{name}: managed policies {res['Properties']['ManagedPolicyArns']}")
    for name, st in _statements(cfn):
        actions = _as_list(st.get("Action", []))
        if "NotAction" in st or "NotResource" in st:
            found.append(f"{name}: NotAction/NotResource in {st.get('Sid')}")
        for action in actions:
            if "*" in action:
                found.append(f"{name}: wildcard action {action!r} in {st.get('Sid')}")
        for resource in _as_list(st.get("Resource", [])):
            if isinstance(resource, str) and resource.split(":")[-1] == "*":
                if resource == "*" and set(actions) <= STAR_RESOURCE_ALLOWED:
                    continue
                found.append(f"{name}: resource {resource!r} for {actions} in {st.get('Sid')}")
    return found


def problems(sam_doc: dict[str, Any]) -> list[str]:
    """Everything CI reports for a template: translator errors, then lint and IAM findings."""
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        cfn = translate(sam_doc)
    except InvalidDocumentException as exc:
        return [f"SAM: {cause.message}" for cause in exc.causes]
    return lint(cfn) + iam_findings(cfn)


def _esm(cfn: dict[str, Any]) -> dict[str, Any]:
    (esm,) = [
        r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    props: dict[str, Any] = esm["Properties"]
    return props


def _source_stream(sam_doc: dict[str, Any]) -> dict[str, Any]:
    fn = sam_doc["Resources"]["NotifierFunction"]["Properties"]
    props: dict[str, Any] = fn["Events"]["SourceStream"]["Properties"]
    return props


def _policy(sam_doc: dict[str, Any], sid: str) -> dict[str, Any]:
    role = sam_doc["Resources"]["FunctionRole"]["Properties"]
    (st,) = [s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Sid"] == sid]
    return st  # type: ignore[no-any-return]


# -- the template as shipped ------------------------------------------------------------------


def test_template_translates_and_lints_clean(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the shipped template
    # WHEN it is translated, linted and checked for least privilege
    found = problems(sam())
    # THEN nothing is reported
    assert found == []


def test_event_source_mapping_reliability_settings(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the translated template
    cfn = translate(sam())
    # WHEN we read the event source mapping SAM generated
    esm = _esm(cfn)
    # THEN every reliability setting is set explicitly, not left to a default
    for key in (
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "FunctionResponseTypes",
        "DestinationConfig",
        "FilterCriteria",
        "StartingPosition",
    ):
        assert key in esm, key
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    # AND retries are bounded (the default -1 lets one poison record block a shard for a day)
    assert 0 <= esm["MaximumRetryAttempts"] <= 10_000
    # AND records are given up (to the OnFailure queue) while the stream still holds them
    assert 60 <= esm["MaximumRecordAgeInSeconds"] < STREAM_RETENTION_S
    # AND a full batch of typical records fits the 6 MB invoke payload
    assert esm["BatchSize"] * RECORD_BYTES < PAYLOAD_LIMIT
    assert esm["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]
    }
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}


def _filter_pattern(cfn: dict[str, Any], event_types: list[str]) -> dict[str, Any]:
    """Resolve the pattern's Fn::Sub/Fn::Join the way CloudFormation would."""
    (flt,) = _esm(cfn)["FilterCriteria"]["Filters"]
    text, variables = flt["Pattern"]["Fn::Sub"]
    sep, ref = variables["Types"]["Fn::Join"]
    assert ref == {"Ref": "NotificationEventTypes"}
    pattern: dict[str, Any] = json.loads(text.replace("${Types}", sep.join(event_types)))
    return pattern


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering for exact-value patterns: every key present, value in list."""
    if isinstance(pattern, list):
        return value in pattern
    return isinstance(value, dict) and all(
        k in value and _matches(p, value[k]) for k, p in pattern.items()
    )


def test_filter_lets_only_inserts_of_notification_types_through(
    sam: Callable[[], dict[str, Any]],
) -> None:
    # GIVEN the filter with the template's default event types
    sam_doc = sam()
    defaults = sam_doc["Parameters"]["NotificationEventTypes"]["Default"].split(",")
    pattern = _filter_pattern(translate(sam_doc), defaults)
    unknown = make_stream_record(0, event_name="INSERT")
    unknown["dynamodb"]["NewImage"]["event_type"] = {"S": "password_reset"}
    # WHEN real-shaped stream records are matched against it
    inserts = [make_stream_record(i, event_name="INSERT") for i in range(len(EVENT_TYPES))]
    others = [make_stream_record(i, event_name=n) for i, n in enumerate(("MODIFY", "REMOVE"))]
    # THEN INSERTs of every notification event type pass, nothing else does
    assert {r["dynamodb"]["NewImage"]["event_type"]["S"] for r in inserts} == set(EVENT_TYPES)
    assert all(_matches(pattern, r) for r in inserts)
    assert not any(_matches(pattern, r) for r in others)
    assert not _matches(pattern, unknown)


def test_role_is_least_privilege(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the translated template
    cfn = translate(sam())
    # WHEN we collect the function role's statements
    statements = {st["Sid"]: st for _, st in _statements(cfn)}
    # THEN the function uses our role, with no managed policy SAM could have added
    fn = cfn["Resources"]["NotifierFunction"]["Properties"]
    assert fn["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert iam_findings(cfn) == []
    # AND each service is confined to its own resource
    assert statements["Ledger"]["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert statements["ReadSourceStream"]["Resource"] == {
        "Fn::GetAtt": ["EventsTable", "StreamArn"]
    }
    assert all(a.startswith("dynamodb:") for a in statements["Ledger"]["Action"])
    assert statements["SendEmail"]["Action"] == "ses:SendEmail"
    ses_resources = json.dumps(statements["SendEmail"]["Resource"])
    assert ":identity/${SesIdentity}" in ses_resources
    assert ":configuration-set/${SesConfigurationSet}" in ses_resources
    assert statements["DeadLetter"]["Action"] == "sqs:SendMessage"


def test_function_shape_environment_and_alarms(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the translated template
    cfn = translate(sam())
    res = cfn["Resources"]
    fn = res["NotifierFunction"]["Properties"]
    # THEN the function is an arm64 container image wired to the stack's resources
    assert fn["PackageType"] == "Image"
    assert fn["Architectures"] == ["arm64"]
    env = fn["Environment"]["Variables"]
    assert env["NOTIFIER_LEDGER_TABLE"] == {"Ref": "LedgerTable"}
    assert env["NOTIFIER_FAILURE_QUEUE_URL"] == {"Ref": "FailureQueue"}
    assert env["NOTIFIER_SENDER"] == {"Ref": "SenderAddress"}
    # AND the tables and queues have the shapes the code expects
    ledger = res["LedgerTable"]["Properties"]
    assert ledger["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    stream = res["EventsTable"]["Properties"]["StreamSpecification"]
    assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    for queue in ("FailureQueue", "FailureDeadLetterQueue", "StreamFailureQueue"):
        assert res[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert res["FailureQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["FailureDeadLetterQueue", "Arn"]
    }
    # AND alarms watch iterator age, errors, throttles and the failure queue's depth
    alarms = {
        (r["Properties"]["MetricName"], json.dumps(r["Properties"]["Dimensions"]))
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    metrics = {m for m, _ in alarms}
    assert {"IteratorAge", "Errors", "Throttles", "ApproximateNumberOfMessagesVisible"} <= metrics
    assert any("FailureQueue" in dims and "Stream" not in dims for _, dims in alarms)


# -- deliberately broken copies ---------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _source_stream(doc)[path] = value

    return mutate


def _add_action(sid: str, action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        st = _policy(doc, sid)
        st["Action"] = [*_as_list(st["Action"]), action]

    return mutate


def _star_resource(sid: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _policy(doc, sid)["Resource"] = "*"

    return mutate


def _bad_destination_type(doc: dict[str, Any]) -> None:
    _source_stream(doc)["DestinationConfig"]["OnFailure"]["Type"] = "Kinesis"


def _drop_role(doc: dict[str, Any]) -> None:
    # SAM then generates a role with AWSLambdaDynamoDBExecutionRole (Resource "*").
    del doc["Resources"]["NotifierFunction"]["Properties"]["Role"]


BROKEN = [
    pytest.param(_set("BatchSize", 20_000), "BatchSize", id="batch-size-20000"),
    pytest.param(_set("ParallelizationFactor", 11), "ParallelizationFactor", id="parallel-11"),
    pytest.param(_set("MaximumBatchingWindowInSeconds", 301), "MaximumBatching", id="window-301"),
    pytest.param(
        _set("FunctionResponseTypes", ["ReportBatchItemFailure"]),
        "FunctionResponseTypes",
        id="misspelled-response-type",
    ),
    pytest.param(_bad_destination_type, "SAM: ", id="sam-destination-type"),
    pytest.param(_add_action("Ledger", "dynamodb:*"), "wildcard action", id="wildcard-action"),
    pytest.param(_add_action("SendEmail", "ses:Send*"), "wildcard action", id="wildcard-ses"),
    pytest.param(_star_resource("Ledger"), "resource '*'", id="star-table"),
    pytest.param(_drop_role, "managed policies", id="sam-generated-role"),
]


@pytest.mark.parametrize(("mutate", "expected"), BROKEN)
def test_broken_setting_is_caught(
    sam: Callable[[], dict[str, Any]], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    # GIVEN the template with one deliberately broken setting
    doc = sam()
    mutate(doc)
    # WHEN CI checks it
    found = problems(doc)
    # THEN the break is reported
    assert any(expected in line for line in found), found
