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
    return lint(cfn) + iam_findings(cfn)


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
