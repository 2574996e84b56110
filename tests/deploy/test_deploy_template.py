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

# The SAM template's checks (translator, cfn-lint, IAM) do not depend on the interpreter: they
# run on the main one in CI, not again on every CPython (.ci/test-pythons: -m "not slow").
pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
PARAMETERS = {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/notifier:test"}
#: Account-level SES reads: these actions have no resource type, "*" is the only valid Resource.
STAR_RESOURCE_ALLOWED = {"ses:GetAccount", "ses:GetSendQuota"}
#: SNS Publish to a phone number names no resource: "*" is the only form AWS accepts, and only
#: in the SMS-over-SNS policy (created only with SmsBackend=sns).
STAR_RESOURCE_BY_SID = {"PublishSms": {"sns:Publish"}}
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
                if resource == "*" and set(actions) <= STAR_RESOURCE_BY_SID.get(
                    str(st.get("Sid")), set()
                ):
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
    return lint(cfn) + iam_findings(cfn) + resource_policy_findings(cfn)


def _esm(cfn: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
    """The notifier's event source mapping for the DynamoDB stream (no condition) or the
    Kinesis one (the SQS mappings of the deliverability functions are not these)."""
    (esm,) = [
        r
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r.get("Condition") == condition
        and r["Properties"]["FunctionName"] == {"Ref": "NotifierFunction"}
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
    # AND retries are bounded (a record that crashes the function every time ends in the
    # OnFailure queue instead of blocking the shard until the stream drops it)
    assert 0 <= esm["MaximumRetryAttempts"] <= 10_000
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


# -- a long SES or credentials outage loses nothing (docs/DEPLOY.md, "Riding out an outage") --

#: The handler's pacing while the account is faulty: it waits up to
#: min(PACE_S, remaining time - DEADLINE_MARGIN_S) per invocation before reporting failures.
PACE_S = 60.0
DEADLINE_MARGIN_S = 3.0  # notifier.config delivery.deadline_margin_ms default
#: Time an invocation needs after its wait: a 1,000-record batch (~1 s of CPU, sends at
#: MaxConcurrency) and the expiry guard's writes to the failure queue.
WORK_AFTER_WAIT_S = 20.0
SQS_MAX_RETENTION_S = 14 * 24 * 3600


def _param_default(sam_doc: dict[str, Any], name: str) -> Any:
    return sam_doc["Parameters"][name]["Default"]


def outage_findings(sam_doc: dict[str, Any]) -> list[str]:
    """Why a template could lose records during a long account outage (empty: it cannot).

    The arithmetic of docs/DEPLOY.md, from the template's own settings: the ESM must not
    discard a record before the stream's 24 h retention (record age, retry attempts at the
    handler's pacing); the handler's expiry guard must act before the stream drops records,
    and an alarm must fire before the guard does; the function must have time for the whole
    wait plus the work; the failure queue must keep what the guard writes for 14 days."""
    found: list[str] = []
    cfn = translate(sam_doc)
    esm = _esm(cfn)
    fn = cfn["Resources"]["NotifierFunction"]["Properties"]
    timeout = float(fn["Timeout"])
    age = esm.get("MaximumRecordAgeInSeconds", -1)
    if age != -1 and age < STREAM_RETENTION_S:
        found.append(f"MaximumRecordAgeInSeconds {age} discards records within 24 h")
    # Each attempt during a fault lasts at least the handler's wait.
    pace = min(PACE_S, timeout - DEADLINE_MARGIN_S)
    if pace <= 0:
        found.append(f"Timeout {timeout} leaves no time to wait out a fault")
        pace = 1.0
    attempts = esm.get("MaximumRetryAttempts", -1)
    needed = -(-STREAM_RETENTION_S // int(pace))
    if attempts != -1 and attempts < needed:
        found.append(
            f"MaximumRetryAttempts {attempts} at {pace:.0f} s each lasts "
            f"{attempts * pace / 3600:.1f} h, less than 24 h ({needed} needed)"
        )
    if timeout < PACE_S + DEADLINE_MARGIN_S + WORK_AFTER_WAIT_S:
        found.append(f"Timeout {timeout} s cuts the {PACE_S:.0f} s wait or the work after it")
    env = fn["Environment"]["Variables"]
    guard_ref = env.get("NOTIFIER_EXPIRY_GUARD_SECONDS")
    if guard_ref is None:
        found.append("NOTIFIER_EXPIRY_GUARD_SECONDS is not set")
        return found
    guard = float(_param_default(sam_doc, guard_ref["Ref"]))
    guard_max = float(sam_doc["Parameters"][guard_ref["Ref"]]["MaxValue"])
    if max(guard, guard_max) + 3600 > STREAM_RETENTION_S:
        found.append(f"expiry guard up to {guard_max:.0f} s leaves under 1 h to act")
    age_alarms = [
        r["Properties"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == "IteratorAge"
        and r["Properties"]["Threshold"] < guard * 1000
        and r["Properties"]["Threshold"] >= 3600 * 1000
    ]
    if not age_alarms:
        found.append("no alarm on record age (IteratorAge >= 1 h) before the expiry guard acts")
    retention = cfn["Resources"]["FailureQueue"]["Properties"]["MessageRetentionPeriod"]
    if retention != SQS_MAX_RETENTION_S:
        found.append(f"FailureQueue keeps messages {retention} s, not the SQS maximum (14 days)")
    return found


def test_template_rides_out_a_day_long_outage(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the shipped template
    doc = sam()
    # WHEN its settings are put through the outage arithmetic
    found = outage_findings(doc)
    # THEN nothing discards a record within the stream's 24 h, and the guard, its alarm, the
    # timeout and the failure queue's retention all fit
    assert found == []


def test_outage_arithmetic_inputs_are_the_documented_ones(
    sam: Callable[[], dict[str, Any]],
) -> None:
    # GIVEN the translated template
    doc = sam()
    cfn = translate(doc)
    esm = _esm(cfn)
    fn = cfn["Resources"]["NotifierFunction"]["Properties"]
    # THEN the values docs/DEPLOY.md computes with are the template's
    assert esm["MaximumRecordAgeInSeconds"] == -1
    assert esm["MaximumRetryAttempts"] == 10_000
    assert esm["BisectBatchOnFunctionError"] is True
    assert fn["Timeout"] == 90
    assert fn["MemorySize"] == 1769
    assert fn["Environment"]["Variables"]["NOTIFIER_EXPIRY_GUARD_SECONDS"] == {
        "Ref": "ExpiryGuardSeconds"
    }
    assert _param_default(doc, "ExpiryGuardSeconds") == 72000
    # AND a 6 h outage takes at most 360 attempts per batch at the 60 s pacing
    assert 6 * 3600 / min(PACE_S, fn["Timeout"] - DEADLINE_MARGIN_S) == 360
    # AND the deployed retry cap outlasts the stream even at 8.64 s per attempt
    assert esm["MaximumRetryAttempts"] * 8.64 >= STREAM_RETENTION_S


def _set_fn(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["Resources"]["NotifierFunction"]["Properties"][key] = value

    return mutate


def _drop_guard_env(doc: dict[str, Any]) -> None:
    del doc["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"][
        "NOTIFIER_EXPIRY_GUARD_SECONDS"
    ]


def _drop_record_age_alarm(doc: dict[str, Any]) -> None:
    del doc["Resources"]["RecordAgeAlarm"]


def _guard_max(value: int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["Parameters"]["ExpiryGuardSeconds"]["MaxValue"] = value

    return mutate


def _failure_retention(value: int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["Resources"]["FailureQueue"]["Properties"]["MessageRetentionPeriod"] = value

    return mutate


OUTAGE_BROKEN = [
    pytest.param(_set("MaximumRecordAgeInSeconds", 21600), "MaximumRecordAge", id="age-6h"),
    pytest.param(_set("MaximumRetryAttempts", 100), "MaximumRetryAttempts", id="retries-100"),
    pytest.param(_set("MaximumRetryAttempts", 1000), "MaximumRetryAttempts", id="retries-1000"),
    pytest.param(_set_fn("Timeout", 30), "Timeout", id="timeout-30"),
    pytest.param(_drop_guard_env, "NOTIFIER_EXPIRY_GUARD_SECONDS", id="no-guard"),
    pytest.param(_guard_max(86000), "expiry guard", id="guard-too-late"),
    pytest.param(_drop_record_age_alarm, "no alarm on record age", id="no-age-alarm"),
    pytest.param(_failure_retention(345600), "FailureQueue keeps", id="retention-4d"),
]


@pytest.mark.parametrize(("mutate", "expected"), OUTAGE_BROKEN)
def test_outage_losing_setting_is_caught(
    sam: Callable[[], dict[str, Any]], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    # GIVEN the template with one setting that would lose records in a long outage
    doc = sam()
    mutate(doc)
    # WHEN the outage arithmetic checks it
    found = outage_findings(doc)
    # THEN the setting is reported
    assert any(expected in line for line in found), found


# -- observability: the function's own EMF metrics, their alarms and the dashboard ----------


def _sub_body(sub: Any) -> str:
    """A Fn::Sub dashboard body with its variables replaced by placeholders."""
    text, variables = sub if isinstance(sub, list) else (sub, {})
    for name in [*variables, "AWS::Region"]:
        text = text.replace("${" + name + "}", f"<{name}>")
    return str(text)


def test_alarms_watch_the_functions_own_metrics(sam: Callable[[], dict[str, Any]]) -> None:
    from notifier.metrics import METRICS

    # GIVEN the translated template and the metric names notifier.metrics writes
    res = translate(sam())["Resources"]
    emitted = {name for name, _ in METRICS.values()}
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "Notifier"
    }
    # THEN dead-lettered, account faults and unknown outcomes alarm on any occurrence
    assert set(alarms) == {"DeadLettered", "AccountFaults", "UnknownOutcomes"}
    for metric, props in alarms.items():
        assert metric in emitted
        # AND on the dimension the writer sets in Lambda: the function's name
        assert props["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": "NotifierFunction"}}
        ]
        assert props["Statistic"] == "Sum"
        assert props["Threshold"] == 0
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] == "notBreaching"
    # AND iterator age (how far behind) and record age (12 h) are alarmed once each, not twice
    ages = sorted(
        r["Properties"]["Threshold"]
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["MetricName"] == "IteratorAge"
    )
    assert ages == [300_000, 43_200_000]


def test_dashboard_shows_every_metric_the_function_writes(
    sam: Callable[[], dict[str, Any]],
) -> None:
    from notifier.metrics import LATENCY, METRICS

    # GIVEN the dashboard of the translated template
    res = translate(sam())["Resources"]
    (dash,) = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    # WHEN its body is read with the substitutions filled in
    body = json.loads(_sub_body(dash["Properties"]["DashboardBody"]["Fn::Sub"]))
    names: set[str] = set()
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            names.update(x for x in row if isinstance(x, str) and x not in (".", "..."))
    # THEN it is valid JSON showing the key metrics and the Lambda iterator age
    wanted = {
        "Sent",
        "Duplicates",
        "Skipped",
        "FailedPermanent",
        "FailedTransient",
        "DeadLettered",
        "UnknownOutcomes",
        "AccountFaults",
        "LedgerWriteUnits",
        LATENCY[0],
    }
    assert wanted <= names
    assert wanted - {LATENCY[0]} <= {n for n, _ in METRICS.values()}
    assert "IteratorAge" in names


# -- the Kinesis Data Streams for DynamoDB option -----------------------------------------------


def test_kinesis_source_is_an_option_with_one_mapping_enabled(
    sam: Callable[[], dict[str, Any]],
) -> None:
    # GIVEN the translated template
    cfn = translate(sam())
    res = cfn["Resources"]
    params = cfn["Parameters"]
    # THEN the source is a parameter, DynamoDB Streams by default
    assert params["ChangeSource"]["AllowedValues"] == ["dynamodb-streams", "kinesis"]
    assert params["ChangeSource"]["Default"] == "dynamodb-streams"
    # AND retention can reach 365 days (the redrive window)
    assert params["KinesisRetentionHours"]["MaxValue"] == 365 * 24
    assert cfn["Conditions"]["UseKinesis"] == {"Fn::Equals": [{"Ref": "ChangeSource"}, "kinesis"]}
    # AND the Kinesis resources exist only with ChangeSource=kinesis
    for name in ("ChangeStream", "ReadChangeStreamPolicy", "KinesisSource"):
        assert res[name]["Condition"] == "UseKinesis", name
    assert res["ChangeStreamConsumer"]["Condition"] == "UseKinesisFanOut"
    stream = res["ChangeStream"]["Properties"]
    assert stream["RetentionPeriodHours"] == {"Ref": "KinesisRetentionHours"}
    spec = res["EventsTable"]["Properties"]["KinesisStreamSpecification"]
    assert spec["Fn::If"][0] == "UseKinesis"
    assert spec["Fn::If"][1]["StreamArn"] == {"Fn::GetAtt": ["ChangeStream", "Arn"]}
    assert spec["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    # AND the DynamoDB stream's mapping is disabled exactly when the Kinesis one exists
    assert _esm(cfn)["Enabled"] == {"Fn::If": ["UseKinesis", False, True]}


def test_kinesis_mapping_reliability_settings(sam: Callable[[], dict[str, Any]]) -> None:
    # GIVEN the Kinesis event source mapping
    cfn = translate(sam())
    esm = _esm(cfn, "UseKinesis")
    # THEN it keeps the stream mapping's contract
    assert esm["StartingPosition"] == "TRIM_HORIZON"
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["MaximumRecordAgeInSeconds"] == -1
    assert 0 <= esm["MaximumRetryAttempts"] <= 10_000
    assert esm["ParallelizationFactor"] == {"Ref": "KinesisParallelizationFactor"}
    # base64 makes a Kinesis record 4/3 of the change record: a full batch still fits
    assert esm["BatchSize"] * RECORD_BYTES * 4 / 3 < PAYLOAD_LIMIT
    assert esm["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]
    }
    assert esm["EventSourceArn"] == {
        "Fn::If": [
            "UseKinesisFanOut",
            {"Fn::GetAtt": ["ChangeStreamConsumer", "ConsumerARN"]},
            {"Fn::GetAtt": ["ChangeStream", "Arn"]},
        ]
    }
    # AND the filter matches the decoded change record under "data", like the stream's filter
    stream_pattern = _esm(cfn)["FilterCriteria"]["Filters"][0]["Pattern"]["Fn::Sub"]
    (kinesis_filter,) = esm["FilterCriteria"]["Filters"]
    kinesis_pattern = kinesis_filter["Pattern"]["Fn::Sub"]
    assert kinesis_pattern[1] == stream_pattern[1]
    assert kinesis_pattern[0] == '{"data": ' + stream_pattern[0] + "}"


def test_kinesis_read_permissions_name_the_stream(sam: Callable[[], dict[str, Any]]) -> None:
    cfn = translate(sam())
    statements = {st["Sid"]: st for _, st in _statements(cfn)}
    assert statements["ReadChangeStream"]["Resource"] == {"Fn::GetAtt": ["ChangeStream", "Arn"]}
    assert all(a.startswith("kinesis:") for a in statements["ReadChangeStream"]["Action"])
    assert "kinesis:SubscribeToShard" in statements["ReadChangeStreamFanOut"]["Action"]
    assert iam_findings(cfn) == []


@pytest.mark.parametrize(
    ("policy", "condition"),
    [
        ("SmsSnsPolicy", "UseSmsSns"),
        ("SmsEumPolicy", "UseSmsEum"),
        ("PushPolicy", "UsePush"),
        ("WebhookParameterPolicy", "HasWebhookParameter"),
        ("WebhookSecretPolicy", "HasWebhookSecretArn"),
    ],
)
def test_each_channel_is_granted_only_when_configured(
    sam_source: dict[str, Any], policy: str, condition: str
) -> None:
    # GIVEN the template WHEN its channel policies are read
    cfn = sam_source
    res = cfn["Resources"][policy]
    # THEN each exists only under its parameter's condition, attached to the roles of the two
    # functions that send (the notifier and the reconcile run), no other
    assert res["Type"] == "AWS::IAM::Policy"
    assert res["Condition"] == condition
    assert condition in cfn["Conditions"]
    assert res["Properties"]["Roles"] == [{"Ref": "FunctionRole"}, {"Ref": "ReconcileRole"}]


# -- deliverability (issue #29): preferences, unsubscribe endpoint, SES events, reconcile -----


@pytest.fixture(scope="module")
def shipped(sam_source: dict[str, Any]) -> dict[str, Any]:
    """The shipped template, translated once for the read-only checks below (do not mutate)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return translate(sam_source)


def _arn(name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, "Arn"]}


SSM_KEY = {
    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
    ":parameter${UnsubscribeKeyParameter}"
}
SQS_CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
SES_SEND = [
    {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
        ":identity/${SesIdentity}"
    },
    {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
        ":configuration-set/${SesConfigurationSet}"
    },
]
LEDGER_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}

#: Every statement of each deliverability role: Sid -> (actions, resources). Exact: an extra
#: action, statement or resource is a finding, as is a missing one.
ROLE_STATEMENTS: dict[str, dict[str, tuple[set[str], list[Any]]]] = {
    "UnsubscribeRole": {
        # TransactWriteItems is authorised by its parts: a conditional Put and an Update
        "RedeemToken": (
            {"dynamodb:PutItem", "dynamodb:UpdateItem"},
            [_arn("PreferencesTable")],
        ),
        "ReadUnsubscribeKey": ({"ssm:GetParameter"}, [SSM_KEY]),
        "Logs": (LOGS, [{"Fn::Sub": "${UnsubscribeLogGroup.Arn}"}]),
    },
    "SesEventsRole": {
        "ConsumeSesEvents": (SQS_CONSUME, [_arn("SesEventsQueue")]),
        "RecordDeliveryStatus": ({"dynamodb:UpdateItem"}, [_arn("LedgerTable")]),
        "SuppressAndOptOut": ({"dynamodb:UpdateItem"}, [_arn("PreferencesTable")]),
        "Logs": (LOGS, [{"Fn::Sub": "${SesEventsLogGroup.Arn}"}]),
    },
    "ReconcileRole": {
        "ConsumeReconcileQueue": (SQS_CONSUME, [_arn("ReconcileQueue")]),
        "Ledger": (LEDGER_ACTIONS, [_arn("LedgerTable")]),
        "SendEmail": ({"ses:SendEmail"}, SES_SEND),
        "ReadSendQuota": ({"ses:GetAccount", "ses:GetSendQuota"}, ["*"]),
        "DeadLetter": ({"sqs:SendMessage"}, [_arn("FailureQueue")]),
        "ParkUnknown": ({"sqs:SendMessage"}, [_arn("ReconcileQueue")]),
        "ReadPreferences": ({"dynamodb:BatchGetItem"}, [_arn("PreferencesTable")]),
        "ReadUnsubscribeKey": ({"ssm:GetParameter"}, [SSM_KEY]),
        "Logs": (LOGS, [{"Fn::Sub": "${ReconcileLogGroup.Arn}"}]),
    },
}
#: What issue #29 added to the notifier's own role (the rest is pinned above).
FUNCTION_ROLE_ADDED = {
    "ParkUnknown": ({"sqs:SendMessage"}, [_arn("ReconcileQueue")]),
    "ReadPreferences": ({"dynamodb:BatchGetItem"}, [_arn("PreferencesTable")]),
    "ReadUnsubscribeKey": ({"ssm:GetParameter"}, [SSM_KEY]),
}
#: Statements the reconcile run needs because it sends exactly as the notifier does.
SENDING_SIDS = (
    "Ledger",
    "SendEmail",
    "ReadSendQuota",
    "ParkUnknown",
    "ReadPreferences",
    "ReadUnsubscribeKey",
)


def _role_statements(cfn: dict[str, Any], role: str) -> dict[str, tuple[set[str], list[Any]]]:
    """A role's inline statements as Sid -> (actions, resources)."""
    out: dict[str, tuple[set[str], list[Any]]] = {}
    for policy in cfn["Resources"][role]["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            assert st["Effect"] == "Allow", st
            out[st["Sid"]] = (set(_as_list(st["Action"])), _as_list(st["Resource"]))
    return out


def role_findings(cfn: dict[str, Any]) -> list[str]:
    """Where a deliverability role, or what #29 added to FunctionRole, differs from the
    least privilege pinned in ROLE_STATEMENTS / FUNCTION_ROLE_ADDED."""
    found: list[str] = []
    wanted = {**ROLE_STATEMENTS, "FunctionRole": FUNCTION_ROLE_ADDED}
    for role, expected in wanted.items():
        got = _role_statements(cfn, role)
        if role == "FunctionRole":
            got = {sid: got[sid] for sid in expected if sid in got}
        for sid in sorted(set(got) | set(expected)):
            if got.get(sid) != expected.get(sid):
                found.append(f"{role}.{sid}: {got.get(sid)} != {expected.get(sid)}")
    return found


#: Principal "*" is allowed on Lambda permissions only for the unsubscribe function URL
#: (AuthType NONE): mail providers POST to it without AWS credentials.
PUBLIC_FUNCTION = {"Ref": "UnsubscribeFunction"}


def resource_policy_findings(cfn: dict[str, Any]) -> list[str]:
    """Resource policies (SNS topic, SQS queue, Lambda permissions) that let in more than
    the one AWS service, for the one source, that needs it."""
    found: list[str] = []
    for name, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            for st in props["PolicyDocument"]["Statement"]:
                principal = st.get("Principal")
                if not (isinstance(principal, dict) and set(principal) == {"Service"}):
                    found.append(f"{name}: principal {principal!r} is not one AWS service")
                if any("*" in a for a in _as_list(st.get("Action", []))):
                    found.append(f"{name}: wildcard action in {st.get('Sid')}")
                keys = {k.lower() for cond in st.get("Condition", {}).values() for k in cond}
                if "aws:sourcearn" not in keys:
                    found.append(f"{name}: {st.get('Sid')} has no aws:SourceArn condition")
        if res["Type"] == "AWS::Lambda::Permission" and props.get("Principal") == "*":
            via_url = props.get("FunctionUrlAuthType") == "NONE" or (
                props.get("InvokedViaFunctionUrl") is True
            )
            if props.get("FunctionName") != PUBLIC_FUNCTION or not via_url:
                found.append(f"{name}: public {props.get('Action')} on {props.get('FunctionName')}")
    return found


def test_deliverability_passes_every_check(shipped: dict[str, Any]) -> None:
    # GIVEN the translated template
    # WHEN its roles and resource policies are checked
    # THEN each role is exactly the least privilege pinned here, resource policies admit only
    # the service that needs them, and the generic least-privilege check still passes
    assert role_findings(shipped) == []
    assert resource_policy_findings(shipped) == []
    assert iam_findings(shipped) == []


def test_preferences_table_shape(shipped: dict[str, Any]) -> None:
    # GIVEN the preferences table
    res = shipped["Resources"]["PreferencesTable"]
    props = res["Properties"]
    # THEN it has the key and TTL notifier.preferences uses, and outlives the stack
    assert res["DeletionPolicy"] == res["UpdateReplacePolicy"] == "Retain"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


DELIVERABILITY_RESOURCES = (
    "PreferencesTable",
    "UnsubscribeRole",
    "UnsubscribeFunction",
    "UnsubscribeFunctionUrl",
    "SesEventsTopic",
    "SesEventsTopicPolicy",
    "SesEventDestination",
    "SesEventsSubscription",
    "SesEventsQueue",
    "SesEventsQueuePolicy",
    "SesEventsDeadLetterQueue",
    "SesEventsRole",
    "SesEventsFunction",
    "ReconcileQueue",
    "ReconcileDeadLetterQueue",
    "ReconcileRole",
    "ReconcileFunction",
    "ReconcileDeadLetterQueueDepthAlarm",
    "SesEventsDeadLetterQueueDepthAlarm",
    "SesEventsAgeAlarm",
)


def test_deliverability_resources_exist_unconditionally(shipped: dict[str, Any]) -> None:
    # GIVEN the translated template
    res = shipped["Resources"]
    # THEN every deliverability resource exists whatever the parameters: in particular the
    # reconcile queue and its function survive a switch of UnknownOutcome away from
    # "reconcile", so sends parked before the switch are still settled
    for name in DELIVERABILITY_RESOURCES:
        assert name in res, name
        assert "Condition" not in res[name], name
    # AND the policy is a parameter, reconcile by default, passed to both sending functions
    param = shipped["Parameters"]["UnknownOutcome"]
    assert param["AllowedValues"] == ["retry", "assume_sent", "reconcile"]
    assert param["Default"] == "reconcile"
    # AND the only deliverability condition is the endpoint's optional reserved concurrency
    assert shipped["Conditions"]["HasUnsubscribeConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "UnsubscribeReservedConcurrency"}, 0]}]
    }
    assert res["UnsubscribeFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasUnsubscribeConcurrency",
            {"Ref": "UnsubscribeReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }


DELIVERABILITY_FUNCTIONS = [
    # function, role, log group, handler (ImageConfig.Command), memory, timeout
    (
        "UnsubscribeFunction",
        "UnsubscribeRole",
        "UnsubscribeLogGroup",
        "notifier.unsubscribe",
        512,
        10,
    ),
    ("SesEventsFunction", "SesEventsRole", "SesEventsLogGroup", "notifier.ses_events", 256, 30),
    ("ReconcileFunction", "ReconcileRole", "ReconcileLogGroup", "notifier.reconcile", 1769, 90),
]


@pytest.mark.parametrize(
    ("function", "role", "log_group", "module", "memory", "timeout"), DELIVERABILITY_FUNCTIONS
)
def test_deliverability_function_runs_its_handler(
    shipped: dict[str, Any],
    function: str,
    role: str,
    log_group: str,
    module: str,
    memory: int,
    timeout: int,
) -> None:
    import importlib

    # GIVEN one of the deliverability functions
    fn = shipped["Resources"][function]["Properties"]
    # THEN it is the notifier image on arm64, on the standard runtime with its handler as the
    # command (deploy/entrypoint.sh passes the command to the base image's entrypoint)
    assert fn["PackageType"] == "Image"
    assert fn["Code"] == {"ImageUri": {"Ref": "ImageUri"}}
    assert fn["Architectures"] == ["arm64"]
    assert fn["Environment"]["Variables"]["NOTIFIER_RUNTIME"] == "standard"
    assert fn["ImageConfig"] == {"Command": [f"{module}.lambda_handler"]}
    assert callable(importlib.import_module(module).lambda_handler)
    entrypoint = (TEMPLATE.parent / "entrypoint.sh").read_text()
    standard = entrypoint.split("standard)", 1)[1].split(";;", 1)[0]
    assert '"$@"' in standard
    # AND it has its own role and log group, and the sizing chosen for it
    assert fn["Role"] == _arn(role)
    assert fn["LoggingConfig"] == {"LogGroup": {"Ref": log_group}, "LogFormat": "JSON"}
    assert (fn["MemorySize"], fn["Timeout"]) == (memory, timeout)


def test_unsubscribe_endpoint_is_a_public_function_url(shipped: dict[str, Any]) -> None:
    # GIVEN the translated template
    res = shipped["Resources"]
    # THEN the endpoint is a function URL without IAM auth (mail providers POST to it; the
    # signed token is the authorisation), answering in one buffered response
    assert res["UnsubscribeFunctionUrl"]["Type"] == "AWS::Lambda::Url"
    assert res["UnsubscribeFunctionUrl"]["Properties"] == {
        "TargetFunctionArn": {"Ref": "UnsubscribeFunction"},
        "AuthType": "NONE",
        "InvokeMode": "BUFFERED",
    }
    # AND the public permissions are for that URL only: InvokeFunctionUrl with auth NONE,
    # and InvokeFunction only when invoked through the URL
    public = sorted(
        (r["Properties"]["Action"], json.dumps(r["Properties"], sort_keys=True))
        for r in res.values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "*"
    )
    assert [action for action, _ in public] == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    for _, props in public:
        assert json.loads(props)["FunctionName"] == {"Ref": "UnsubscribeFunction"}
    # AND the endpoint reads the keys from the SSM parameter and writes the preferences table
    env = res["UnsubscribeFunction"]["Properties"]["Environment"]["Variables"]
    assert env["NOTIFIER_PREFERENCES_TABLE"] == {"Ref": "PreferencesTable"}
    assert env["NOTIFIER_UNSUBSCRIBE_KEY"] == {"Fn::Sub": "ssm:${UnsubscribeKeyParameter}"}
    assert shipped["Parameters"]["UnsubscribeKeyParameter"]["AllowedPattern"] == "^/.+$"
    # AND its URL is an output and the base of every link the senders sign
    url = {"Fn::GetAtt": ["UnsubscribeFunctionUrl", "FunctionUrl"]}
    assert shipped["Outputs"]["UnsubscribeUrl"]["Value"] == url
    for sender in ("NotifierFunction", "ReconcileFunction"):
        assert (
            res[sender]["Properties"]["Environment"]["Variables"]["NOTIFIER_UNSUBSCRIBE_BASE_URL"]
            == url
        )


def test_sending_functions_share_the_deliverability_environment(shipped: dict[str, Any]) -> None:
    # GIVEN the notifier and the reconcile run
    res = shipped["Resources"]
    notifier = res["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    reconcile = res["ReconcileFunction"]["Properties"]["Environment"]["Variables"]
    # THEN the notifier has the preferences, unsubscribe and reconcile settings
    assert notifier["NOTIFIER_PREFERENCES_TABLE"] == {"Ref": "PreferencesTable"}
    assert notifier["NOTIFIER_PREFERENCES_ENABLED"] == "true"
    assert notifier["NOTIFIER_UNSUBSCRIBE_KEY"] == {"Fn::Sub": "ssm:${UnsubscribeKeyParameter}"}
    assert notifier["NOTIFIER_UNKNOWN_OUTCOME"] == {"Ref": "UnknownOutcome"}
    assert notifier["NOTIFIER_RECONCILE_QUEUE_URL"] == {"Ref": "ReconcileQueue"}
    # AND the reconcile run builds the same handler: the same environment, bar the runtime
    assert {k: v for k, v in reconcile.items() if k != "NOTIFIER_RUNTIME"} == {
        k: v for k, v in notifier.items() if k != "NOTIFIER_RUNTIME"
    }
    # AND the SES events function names the two tables it updates
    ses = res["SesEventsFunction"]["Properties"]["Environment"]["Variables"]
    assert ses == {
        "NOTIFIER_RUNTIME": "standard",
        "NOTIFIER_LEDGER_TABLE": {"Ref": "LedgerTable"},
        "NOTIFIER_PREFERENCES_TABLE": {"Ref": "PreferencesTable"},
    }


def test_reconcile_role_sends_as_the_notifier_does(shipped: dict[str, Any]) -> None:
    # GIVEN the two roles that send
    notifier = _role_statements(shipped, "FunctionRole")
    reconcile = _role_statements(shipped, "ReconcileRole")
    # THEN the reconcile run may do exactly what the notifier does when it sends
    for sid in SENDING_SIDS:
        assert reconcile[sid] == notifier[sid], sid
    # AND dead-letters to the failure queue, not to the stream mapping's OnFailure queue
    assert reconcile["DeadLetter"][1] == [_arn("FailureQueue")]
    # AND cannot read the source stream
    assert not {"ReadSourceStream", "ListSourceStreams"} & set(reconcile)
    # AND the notifier cannot consume the reconcile queue, only park sends on it
    assert not any(SQS_CONSUME & actions for actions, _ in notifier.values())
    # AND the Kinesis read policy stays the notifier's alone
    assert shipped["Resources"]["ReadChangeStreamPolicy"]["Properties"]["Roles"] == [
        {"Ref": "FunctionRole"}
    ]


SES_EVENT_TYPES = {
    "send",
    "delivery",
    "deliveryDelay",
    "bounce",
    "complaint",
    "reject",
    "renderingFailure",
}


def test_ses_events_flow_from_the_configuration_set_to_the_queue(shipped: dict[str, Any]) -> None:
    # GIVEN the translated template
    res = shipped["Resources"]
    # THEN the existing configuration set publishes the events notifier.ses_events applies to
    # the stack's topic, and only once the topic may publish and the queue is subscribed
    dest = res["SesEventDestination"]
    assert dest["Properties"]["ConfigurationSetName"] == {"Ref": "SesConfigurationSet"}
    ed = dest["Properties"]["EventDestination"]
    assert ed["Enabled"] is True
    assert set(ed["MatchingEventTypes"]) == SES_EVENT_TYPES
    assert ed["SnsDestination"] == {"TopicARN": {"Ref": "SesEventsTopic"}}
    assert set(dest["DependsOn"]) == {
        "SesEventsTopicPolicy",
        "SesEventsSubscription",
        "SesEventsQueuePolicy",
    }
    # AND SES may publish to the topic for this account's configuration set only
    (pub,) = res["SesEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert res["SesEventsTopicPolicy"]["Properties"]["Topics"] == [{"Ref": "SesEventsTopic"}]
    assert pub["Principal"] == {"Service": "ses.amazonaws.com"}
    assert pub["Action"] == "sns:Publish"
    assert pub["Resource"] == {"Ref": "SesEventsTopic"}
    assert pub["Condition"]["StringEquals"] == {
        "AWS:SourceAccount": {"Ref": "AWS::AccountId"},
        "AWS:SourceArn": {
            "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
            ":configuration-set/${SesConfigurationSet}"
        },
    }
    # AND the topic delivers SNS notifications (not raw) to the queue, which only it may fill
    sub = res["SesEventsSubscription"]["Properties"]
    assert sub == {
        "TopicArn": {"Ref": "SesEventsTopic"},
        "Protocol": "sqs",
        "Endpoint": _arn("SesEventsQueue"),
        "RawMessageDelivery": False,
    }
    (send,) = res["SesEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert res["SesEventsQueuePolicy"]["Properties"]["Queues"] == [{"Ref": "SesEventsQueue"}]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == _arn("SesEventsQueue")
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "SesEventsTopic"}}}


def _sqs_esm(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    (esm,) = [
        r["Properties"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["FunctionName"] == {"Ref": function}
    ]
    return esm  # type: ignore[no-any-return]


#: The largest message either queue carries: an SNS-wrapped SES event with its headers, or a
#: failure document with the full record.
MAX_SQS_MESSAGE_BYTES = 16 * 1024


def sqs_findings(sam_doc: dict[str, Any]) -> list[str]:
    """Why an SQS-triggered function could loop, lose or silently park messages (empty: it
    cannot). For each SQS event source mapping: partial batch failures reported; a batch
    fits the invoke payload; more than 10 messages need a batching window; the queue's
    visibility timeout is at least 6x the function's timeout (AWS's advice); the queue
    redrives to a DLQ that keeps messages at least as long (a standard queue keeps a moved
    message's original enqueue time) and has a depth alarm."""
    found: list[str] = []
    cfn = translate(sam_doc)
    res = cfn["Resources"]
    dlq_alarms = {
        json.dumps(r["Properties"]["Dimensions"])
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    for esm in (
        r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ):
        arn = esm["EventSourceArn"]
        if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
            continue
        queue = arn["Fn::GetAtt"][0]
        if res.get(queue, {}).get("Type") != "AWS::SQS::Queue":
            continue
        fn = res[esm["FunctionName"]["Ref"]]["Properties"]
        where = f"{esm['FunctionName']['Ref']} <- {queue}"
        if esm.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
            found.append(f"{where}: FunctionResponseTypes is not [ReportBatchItemFailures]")
        batch = esm.get("BatchSize", 10)
        if batch * MAX_SQS_MESSAGE_BYTES >= PAYLOAD_LIMIT:
            found.append(f"{where}: BatchSize {batch} may exceed the 6 MB payload")
        if batch > 10 and not esm.get("MaximumBatchingWindowInSeconds"):
            found.append(f"{where}: BatchSize {batch} needs MaximumBatchingWindowInSeconds")
        qprops = res[queue]["Properties"]
        visibility = qprops.get("VisibilityTimeout", 30)
        if visibility < 6 * fn["Timeout"]:
            found.append(f"{where}: VisibilityTimeout {visibility} < 6x Timeout {fn['Timeout']}")
        redrive = qprops.get("RedrivePolicy")
        if not redrive:
            found.append(f"{where}: no RedrivePolicy (a failing message loops until it expires)")
            continue
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        if not 1 <= redrive.get("maxReceiveCount", 0) <= 10:
            found.append(f"{where}: maxReceiveCount {redrive.get('maxReceiveCount')}")
        kept = res[dlq]["Properties"].get("MessageRetentionPeriod", 345600)
        if kept < qprops.get("MessageRetentionPeriod", 345600):
            found.append(f"{where}: {dlq} keeps messages shorter than {queue}")
        dims = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
        if json.dumps(dims) not in dlq_alarms:
            found.append(f"{where}: no depth alarm on {dlq}")
    return found


def test_sqs_functions_cannot_loop_lose_or_silently_park(
    sam: Callable[[], dict[str, Any]],
) -> None:
    # GIVEN the shipped template WHEN its SQS mappings are checked THEN nothing is reported
    assert sqs_findings(sam()) == []


@pytest.mark.parametrize(
    ("function", "queue", "dlq", "batch", "window", "timeout"),
    [
        ("SesEventsFunction", "SesEventsQueue", "SesEventsDeadLetterQueue", 100, 5, 30),
        ("ReconcileFunction", "ReconcileQueue", "ReconcileDeadLetterQueue", 100, 1, 90),
    ],
)
def test_sqs_mapping_settings(
    shipped: dict[str, Any],
    function: str,
    queue: str,
    dlq: str,
    batch: int,
    window: int,
    timeout: int,
) -> None:
    # GIVEN the SQS event source mapping of a deliverability function
    esm = _sqs_esm(shipped, function)
    res = shipped["Resources"]
    # THEN it reads its queue with the batch size and window chosen for it, reporting
    # partial batch failures
    assert esm["EventSourceArn"] == _arn(queue)
    assert esm["BatchSize"] == batch
    assert esm["MaximumBatchingWindowInSeconds"] == window
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # AND the queue hides a message for 6x the function's timeout, keeps it 14 days, and
    # moves it to its DLQ (14 days) after 5 receives
    q = res[queue]["Properties"]
    assert res[function]["Properties"]["Timeout"] == timeout
    assert q["VisibilityTimeout"] == 6 * timeout
    assert q["MessageRetentionPeriod"] == SQS_MAX_RETENTION_S
    assert q["SqsManagedSseEnabled"] is True
    assert q["RedrivePolicy"] == {"deadLetterTargetArn": _arn(dlq), "maxReceiveCount": 5}
    assert res[dlq]["Properties"]["MessageRetentionPeriod"] == SQS_MAX_RETENTION_S
    # AND the reconcile run is capped at 5 concurrent environments (resends share SES's rate)
    if function == "ReconcileFunction":
        assert esm["ScalingConfig"] == {"MaximumConcurrency": 5}
    else:
        assert "ScalingConfig" not in esm


def test_ses_events_lag_alarm_fires_before_unknown_sends_are_resent(
    shipped: dict[str, Any],
) -> None:
    from notifier.config import Delivery

    # GIVEN the alarm on the age of the oldest SES event waiting
    alarm = shipped["Resources"]["SesEventsAgeAlarm"]["Properties"]
    # THEN it watches the SES events queue and fires before reconcile_seconds (a Send event
    # applied later than that comes after its unknown send was resent)
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["SesEventsQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] < Delivery().reconcile_seconds


# -- deliberately broken deliverability copies ------------------------------------------------


def _statement(doc: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    (st,) = [
        s
        for p in doc["Resources"][role]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Sid"] == sid
    ]
    return st  # type: ignore[no-any-return]


def _widen(role: str, sid: str, action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        st = _statement(doc, role, sid)
        st["Action"] = [*_as_list(st["Action"]), action]

    return mutate


def _retarget(role: str, sid: str, resource: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _statement(doc, role, sid)["Resource"] = resource

    return mutate


def _resource_policy(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        (st,) = doc["Resources"][name]["Properties"]["PolicyDocument"]["Statement"]
        if value is None:
            del st[key]
        else:
            st[key] = value

    return mutate


def _url_auth(doc: dict[str, Any]) -> None:
    # the same public URL on the notifier itself
    doc["Resources"]["NotifierFunction"]["Properties"]["FunctionUrlConfig"] = {"AuthType": "NONE"}


IAM_BROKEN = [
    pytest.param(
        _widen("UnsubscribeRole", "RedeemToken", "dynamodb:DeleteItem"),
        "UnsubscribeRole.RedeemToken",
        id="unsubscribe-may-delete",
    ),
    pytest.param(
        _retarget("SesEventsRole", "SuppressAndOptOut", {"Fn::GetAtt": ["EventsTable", "Arn"]}),
        "SesEventsRole.SuppressAndOptOut",
        id="ses-events-wrong-table",
    ),
    pytest.param(
        _widen("SesEventsRole", "ConsumeSesEvents", "sqs:SendMessage"),
        "SesEventsRole.ConsumeSesEvents",
        id="ses-events-may-send",
    ),
    pytest.param(
        _retarget(
            "ReconcileRole", "DeadLetter", [_arn("FailureQueue"), _arn("StreamFailureQueue")]
        ),
        "ReconcileRole.DeadLetter",
        id="reconcile-stream-failures",
    ),
    pytest.param(
        _widen("FunctionRole", "ReadPreferences", "dynamodb:PutItem"),
        "FunctionRole.ReadPreferences",
        id="notifier-writes-preferences",
    ),
    pytest.param(
        _widen("FunctionRole", "ParkUnknown", "sqs:ReceiveMessage"),
        "FunctionRole.ParkUnknown",
        id="notifier-consumes-reconcile",
    ),
    pytest.param(
        _retarget(
            "UnsubscribeRole",
            "ReadUnsubscribeKey",
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*"},
        ),
        "UnsubscribeRole.ReadUnsubscribeKey",
        id="any-parameter",
    ),
    pytest.param(
        _resource_policy("SesEventsTopicPolicy", "Condition", None),
        "no aws:SourceArn",
        id="topic-any-ses-source",
    ),
    pytest.param(
        _resource_policy("SesEventsQueuePolicy", "Principal", "*"),
        "is not one AWS service",
        id="queue-public",
    ),
    pytest.param(_url_auth, "public lambda:InvokeFunctionUrl", id="notifier-public-url"),
]


@pytest.mark.parametrize(("mutate", "expected"), IAM_BROKEN)
def test_widened_deliverability_permission_is_caught(
    sam: Callable[[], dict[str, Any]], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    # GIVEN the template with one permission wider than a function needs
    doc = sam()
    mutate(doc)
    # WHEN the role and resource-policy checks run on the translation
    cfn = translate(doc)
    found = role_findings(cfn) + resource_policy_findings(cfn)
    # THEN the widening is reported
    assert any(expected in line for line in found), found


def _esm_prop(function: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        (event,) = doc["Resources"][function]["Properties"]["Events"].values()
        if value is None:
            del event["Properties"][key]
        else:
            event["Properties"][key] = value

    return mutate


def _queue_prop(queue: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        props = doc["Resources"][queue]["Properties"]
        if value is None:
            del props[key]
        else:
            props[key] = value

    return mutate


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        del doc["Resources"][name]

    return mutate


SQS_BROKEN = [
    pytest.param(
        _esm_prop("SesEventsFunction", "FunctionResponseTypes", None),
        "FunctionResponseTypes",
        id="ses-events-whole-batch-retried",
    ),
    pytest.param(
        _esm_prop("ReconcileFunction", "FunctionResponseTypes", None),
        "FunctionResponseTypes",
        id="reconcile-whole-batch-retried",
    ),
    pytest.param(
        _esm_prop("SesEventsFunction", "MaximumBatchingWindowInSeconds", None),
        "needs MaximumBatchingWindowInSeconds",
        id="batch-100-no-window",
    ),
    pytest.param(
        _esm_prop("ReconcileFunction", "BatchSize", 1000),
        "6 MB",
        id="reconcile-batch-1000",
    ),
    pytest.param(
        _queue_prop("ReconcileQueue", "VisibilityTimeout", 90),
        "VisibilityTimeout 90",
        id="reconcile-visibility-1x",
    ),
    pytest.param(
        _queue_prop("SesEventsQueue", "RedrivePolicy", None),
        "no RedrivePolicy",
        id="ses-events-no-dlq",
    ),
    pytest.param(
        _queue_prop("ReconcileDeadLetterQueue", "MessageRetentionPeriod", 345600),
        "keeps messages shorter",
        id="reconcile-dlq-4-days",
    ),
    pytest.param(
        _drop("ReconcileDeadLetterQueueDepthAlarm"),
        "no depth alarm on ReconcileDeadLetterQueue",
        id="reconcile-dlq-unwatched",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), SQS_BROKEN)
def test_broken_sqs_setting_is_caught(
    sam: Callable[[], dict[str, Any]], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    # GIVEN the template with one SQS setting that would loop, lose or silently park messages
    doc = sam()
    mutate(doc)
    # WHEN the SQS checks run
    found = sqs_findings(doc)
    # THEN it is reported
    assert any(expected in line for line in found), found
