"""Lambda's log lines in CloudWatch Logs (every invocation the emulator runs) and FilterLogEvents
(filter patterns, stream selection, time range, pagination), seen through boto3 and on the wire."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest
from conftest import bare_function, make_function, unique, wait_for

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
REPORT = re.compile(rf"^REPORT RequestId: ({UUID})\tDuration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB\tMax Memory Used: (\d+) MB$")


def stream_re(version: str) -> str:
    return r"^\d{4}/\d\d/\d\d/\[" + re.escape(version) + r"\][0-9a-f]{32}$"


def all_events(logs, **kwargs):
    events, token = [], None
    while True:
        page = logs.filter_log_events(**kwargs, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def of_request(events, request_id):
    """The messages of one invocation, START to REPORT."""
    messages = [e["message"] for e in events]
    start = messages.index(next(m for m in messages if m.startswith(f"START RequestId: {request_id} ")))
    end = messages.index(next(m for m in messages if m.startswith(f"REPORT RequestId: {request_id}\t")))
    return events[start : end + 1]


def test_every_invocation_writes_lambdas_lines_per_executed_version(emulator, clients):
    logs = emulator.client("logs")
    fn = unique("logged")
    v1, v2 = make_function(clients.lam, fn)
    clients.lam.update_function_configuration(FunctionName=fn, MemorySize=256)
    emulator.behaviour(fn, v1, response={"ok": True}, log_lines=["hello from v1", "second line\twith a tab"], max_memory_used_mb=42)
    emulator.behaviour(fn, v2, function_error="Unhandled", response={"errorType": "Boom", "errorMessage": "it broke"})
    before = int(time.time() * 1000)
    first = clients.lam.invoke(FunctionName=fn, Qualifier="live", Payload=b"{}")
    second = clients.lam.invoke(FunctionName=fn, Qualifier="live", Payload=b"{}", LogType="Tail")
    failed = clients.lam.invoke(FunctionName=fn, Qualifier=v2, Payload=b"{}")
    echoed = clients.lam.invoke(FunctionName=fn, Payload=b'{"echo": 1}')  # $LATEST: no behaviour, moto's echo
    after = int(time.time() * 1000)
    assert failed["FunctionError"] == "Unhandled" and echoed["ExecutedVersion"] == "$LATEST"
    ids = [r["ResponseMetadata"]["RequestId"] for r in (first, second, failed, echoed)]
    assert all(re.fullmatch(UUID, i) for i in ids) and len(set(ids)) == 4

    events = all_events(logs, logGroupName=f"/aws/lambda/{fn}")
    assert {e["logStreamName"] for e in events} == {e["logStreamName"] for e in events if re.match(r"^\d{4}/", e["logStreamName"])}
    assert all(before - 1 <= e["timestamp"] <= after + 1 for e in events)
    # Interleaved by time across streams, oldest first.
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)

    one = of_request(events, ids[0])
    assert [e["message"] for e in one][:3] == [f"START RequestId: {ids[0]} Version: {v1}", "hello from v1", "second line\twith a tab"]
    assert one[3]["message"] == f"END RequestId: {ids[0]}"
    report = REPORT.match(one[4]["message"])
    assert report and report.group(1) == ids[0]
    # Memory Size is the executed version's (published before the update to 256 MB).
    assert report.group(4) == "128" and report.group(5) == "42"
    assert int(report.group(3)) == max(1, -int(-float(report.group(2)) // 1))  # billed: rounded up to the ms
    assert [e["timestamp"] for e in one] == sorted(e["timestamp"] for e in one)
    # Sequential invocations of one version share its sandbox (and so its log stream).
    two = of_request(events, ids[1])
    assert re.fullmatch(stream_re(v1), one[0]["logStreamName"]) and two[0]["logStreamName"] == one[0]["logStreamName"]
    # LogType=Tail: the end of the execution log, base64, in X-Amz-Log-Result.
    tail = base64.b64decode(second["LogResult"]).decode()
    assert f"START RequestId: {ids[1]} Version: {v1}" in tail and f"REPORT RequestId: {ids[1]}\t" in tail

    broken = of_request(events, ids[2])
    assert re.fullmatch(stream_re(v2), broken[0]["logStreamName"])
    assert broken[0]["message"] == f"START RequestId: {ids[2]} Version: {v2}"
    assert re.fullmatch(rf"{ISO}\t{ids[2]}\tERROR\tInvoke Error \t" + re.escape('{"errorType":"Boom","errorMessage":"it broke"}'), broken[1]["message"])
    assert [m["message"] for m in broken[2:3]] == [f"END RequestId: {ids[2]}"] and REPORT.match(broken[3]["message"])

    latest = of_request(events, ids[3])
    assert re.fullmatch(stream_re("$LATEST"), latest[0]["logStreamName"])
    assert [e["message"].split(" RequestId")[0] for e in latest] == ["START", "END", "REPORT"]
    assert latest[0]["message"] == f"START RequestId: {ids[3]} Version: $LATEST"
    assert REPORT.match(latest[2]["message"]).group(4) == "256"

    # The invocation log (control plane) names the request and the stream.
    recorded = [i for i in emulator.control("GET", f"/_shiftguard/lambda/invocations?function={fn}") if i["requestId"] == ids[2]]
    assert recorded and recorded[0]["logStreamName"] == broken[0]["logStreamName"]


def test_timeout_is_logged_with_lambdas_text(emulator, clients):
    logs = emulator.client("logs")
    fn = unique("slow")
    bare_function(clients.lam, fn)
    emulator.behaviour(fn, delay_ms=500, timeout_ms=150, log_lines=["working..."])
    out = clients.lam.invoke(FunctionName=fn, Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    request_id = out["ResponseMetadata"]["RequestId"]
    lines = [e["message"] for e in of_request(all_events(logs, logGroupName=f"/aws/lambda/{fn}"), request_id)]
    assert lines[:2] == [f"START RequestId: {request_id} Version: $LATEST", "working..."]
    assert re.fullmatch(rf"{ISO} {request_id} Task timed out after 0\.15 seconds", lines[2])
    assert lines[3] == f"END RequestId: {request_id}" and REPORT.match(lines[4])
    assert not any("Invoke Error" in line for line in lines)
    assert float(REPORT.match(lines[4]).group(2)) >= 140


def test_concurrent_invocations_get_their_own_sandbox_stream(emulator, clients):
    import threading

    logs = emulator.client("logs")
    fn = unique("busy")
    bare_function(clients.lam, fn)
    emulator.behaviour(fn, delay_ms=300)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(clients.lam.invoke(FunctionName=fn, Payload=b"{}")["ResponseMetadata"]["RequestId"])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids.append(clients.lam.invoke(FunctionName=fn, Payload=b"{}")["ResponseMetadata"]["RequestId"])
    events = all_events(logs, logGroupName=f"/aws/lambda/{fn}")
    streams = [of_request(events, i)[0]["logStreamName"] for i in ids]
    # Two at once: two execution environments, two streams; the next one reuses a free one.
    assert streams[0] != streams[1] and streams[2] in streams[:2]
    for i in ids:  # each invocation's lines stay together in its own stream
        assert len({e["logStreamName"] for e in of_request(all_events(logs, logGroupName=f"/aws/lambda/{fn}", logStreamNames=[streams[ids.index(i)]]), i)}) == 1


@pytest.mark.parametrize("bad", [{"log_lines": "one line"}, {"log_lines": [1]}, {"max_memory_used_mb": "a lot"}])
def test_behaviour_fields_are_checked(emulator, bad):
    with pytest.raises(AssertionError, match="400"):
        emulator.behaviour("x", **bad)


def test_engine_invocations_log_too_hooks_and_sns(emulator, engine, clients, runtime_api, lambda_app):
    logs = emulator.client("logs")
    # An SNS delivery (asynchronous) to a function with a canned behaviour.
    fn = unique("subscriber")
    bare_function(clients.lam, fn)
    emulator.behaviour(fn, log_lines=["got the notification"])
    arn = clients.lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    topic = clients.sns.create_topic(Name=unique("topic"))["TopicArn"]
    clients.sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)
    clients.sns.publish(TopicArn=topic, Message="hi")
    invocation = wait_for(lambda: next(iter(emulator.control("GET", f"/_shiftguard/lambda/invocations?function={fn}")), None), what="the SNS delivery")
    lines = [e["message"] for e in of_request(all_events(logs, logGroupName=f"/aws/lambda/{fn}"), invocation["requestId"])]
    assert lines[1] == "got the notification" and lines[0].endswith("Version: $LATEST")

    # A CodeDeploy hook run by a bound process (the Runtime API gives no log lines: START/END/REPORT).
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce")
    hook = unique("CodeDeployHook_pre")
    bare_function(clients.lam, hook)
    emulator.bind(hook, runtime_api.endpoint)

    def report(payload):
        clients.cd.put_lifecycle_event_hook_execution_status(deploymentId=payload["DeploymentId"], lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"], status="Succeeded")
        return {"reported": True}

    runtime_api.handlers[hook] = report
    dep = app.deploy({"BeforeAllowTraffic": hook})
    wait_for(lambda: clients.cd.get_deployment(deploymentId=dep)["deploymentInfo"]["status"] == "Succeeded", what="the deployment")
    # The hook reports before its process answers: the deployment may finish before the invocation is recorded.
    ran = wait_for(lambda: next(iter(emulator.control("GET", f"/_shiftguard/lambda/invocations?function={hook}")), None), what="the hook's invocation")
    assert ran["source"].startswith("codedeploy BeforeAllowTraffic")
    hook_lines = [e["message"] for e in of_request(all_events(logs, logGroupName=f"/aws/lambda/{hook}"), ran["requestId"])]
    assert [m.split(" RequestId")[0] for m in hook_lines] == ["START", "END", "REPORT"]


# ---- FilterLogEvents ---------------------------------------------------------------------------

LINES = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
    "[WARN 200] slow: took 3.5s",
    "[INFO 200] fine",
    "2026-11-22T06:00:00.000Z 1111 Task timed out after 3.00 seconds",
    "error 503 in lower case",
]


@pytest.fixture
def sample_group(emulator):
    """A log group with LINES spread over three streams, written with PutLogEvents."""
    logs = emulator.client("logs")
    group = f"/shiftguard/test/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000) - 60_000
    for s in range(3):
        logs.create_log_stream(logGroupName=group, logStreamName=f"app/{s}")
    for i, line in enumerate(LINES):
        logs.put_log_events(logGroupName=group, logStreamName=f"app/{i % 3}", logEvents=[{"timestamp": now + i * 10, "message": line}])
    return {"logs": logs, "group": group, "t0": now}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("", LINES),
        ('" "', LINES),
        ("ERROR", LINES[:5]),
        ("ERROR ARGUMENTS", LINES[2:4]),  # every term
        ("ARGUMENTS ERROR", LINES[2:4]),
        ("error", LINES[8:]),  # case-sensitive
        ('"INTERNAL SERVER ERROR"', LINES[4:5]),  # the exact phrase
        ('"SERVER INTERNAL"', []),
        ('"took 3.5s"', LINES[5:6]),  # punctuation inside quotes
        ("?WARN ?INFO", LINES[5:7]),  # any term
        ('?ERROR ?"Task timed out"', LINES[:5] + LINES[7:8]),
        ('?"Task timed out" ?"INTERNAL SERVER"', LINES[4:5] + LINES[7:8]),
        ("ERROR -ARGUMENTS", [LINES[0], LINES[1], LINES[4]]),  # exclusion
        ('ERROR -"INTERNAL SERVER" -ARGUMENTS', LINES[:2]),
        ("-ERROR", LINES[5:]),
        ("%ERROR 4[0-9]+%", LINES[:4]),  # a regular expression
        ("%^\\[(WARN|INFO)%", None),  # parentheses are not supported in regexes
        ("{ $.level = \"ERROR\" }", []),  # a JSON pattern: no unstructured line matches
        ("[w1=ERROR, w2]", None),  # space-delimited patterns: not modelled, said so
        ('"unterminated', None),
    ],
)
def test_filter_patterns_for_unstructured_events(sample_group, pattern, expected):
    logs, group = sample_group["logs"], sample_group["group"]
    if expected is None:
        with pytest.raises(logs.exceptions.InvalidParameterException):
            logs.filter_log_events(logGroupName=group, filterPattern=pattern)
        return
    got = [e["message"] for e in all_events(logs, logGroupName=group, filterPattern=pattern)]
    assert got == expected, pattern


JSON_LINES = [
    {"time": "2026-11-22T06:00:00.000Z", "type": "platform.start", "record": {"requestId": "r1", "version": "2"}},
    {"timestamp": "2026-11-22T06:00:00.010Z", "level": "ERROR", "requestId": "r1", "message": "checkout failed", "errorType": "TypeError"},
    {"time": "2026-11-22T06:00:00.020Z", "type": "platform.report", "record": {"requestId": "r1", "metrics": {"durationMs": 12.5, "maxMemoryUsedMB": 40}, "status": "success"}},
    {"time": "2026-11-22T06:00:01.000Z", "type": "platform.report", "record": {"requestId": "r2", "metrics": {"durationMs": 3001.0, "maxMemoryUsedMB": 41}, "status": "timeout"}, "tags": ["slow", "retry"], "cold": True, "extra": None},
]


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ('{ $.type = "platform.report" }', [2, 3]),  # Lambda's JSON log format: one per invocation
        ("{ $.type = platform.* }", [0, 2, 3]),  # `*` wildcard
        ("{ $.record.metrics.durationMs > 1000 }", [3]),
        ("{ $.record.metrics.durationMs <= 12.5 }", [2]),
        ('{ $.level = "ERROR" && $.errorType = TypeError }', [1]),
        ('{ ($.type = "platform.report" && $.record.status = "timeout") || $.level = ERROR }', [1, 3]),
        ("{ $.record.status != success }", [3]),  # only events that have the property (a guess)
        ('{ $.tags[1] = "retry" }', [3]),
        ("{ $.cold IS TRUE }", [3]),
        ("{ $.extra IS NULL }", [3]),
        ("{ $.level NOT EXISTS }", [0, 2, 3]),
        ("{ $.record.requestId = %^r[0-9]$% }", [0, 2, 3]),
        ("{ $.record.metrics.durationMs > fast }", None),
        ("{ level = ERROR }", None),
        ("{ ($.level = ERROR }", None),
    ],
)
def test_json_filter_patterns(emulator, pattern, expected):
    logs = emulator.client("logs")
    group = f"/shiftguard/json/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t0 = int(time.time() * 1000) - 10_000
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": t0 + i, "message": json.dumps(line)} for i, line in enumerate(JSON_LINES)] + [{"timestamp": t0 + 10, "message": "ERROR not json: {\"level\": \"ERROR\"}"}])
    if expected is None:
        with pytest.raises(logs.exceptions.InvalidParameterException):
            logs.filter_log_events(logGroupName=group, filterPattern=pattern)
        return
    got = [json.loads(e["message"]) for e in all_events(logs, logGroupName=group, filterPattern=pattern)]
    assert got == [JSON_LINES[i] for i in expected], pattern


def test_filter_log_events_pages_every_event_once_across_streams(sample_group):
    logs, group, t0 = sample_group["logs"], sample_group["group"], sample_group["t0"]
    seen, token, pages = [], None, 0
    while True:
        page = logs.filter_log_events(logGroupName=group, limit=2, **({"nextToken": token} if token else {}))
        pages += 1
        assert len(page["events"]) <= 2
        seen += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 5
    assert [e["message"] for e in seen] == LINES  # oldest first, interleaved across the 3 streams
    assert len({e["eventId"] for e in seen}) == len(LINES)
    assert all(set(e) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"} for e in seen)
    assert {e["logStreamName"] for e in seen} == {"app/0", "app/1", "app/2"}
    # With a filter and a limit too: the pages give exactly the matching events.
    matched = []
    token = None
    while True:
        page = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", limit=3, **({"nextToken": token} if token else {}))
        matched += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert matched == LINES[:5]
    # Newest first.
    newest = all_events(logs, logGroupName=group, startFromHead=False, limit=4)
    assert [e["message"] for e in newest] == LINES[::-1]
    # Time range, both ends inclusive.
    ranged = all_events(logs, logGroupName=group, startTime=t0 + 20, endTime=t0 + 40)
    assert [e["message"] for e in ranged] == LINES[2:5]
    # Streams by name or by prefix.
    assert [e["message"] for e in all_events(logs, logGroupName=group, logStreamNames=["app/1"])] == LINES[1::3]
    assert [e["message"] for e in all_events(logs, logGroupName=group, logStreamNamePrefix="app/2")] == LINES[2::3]
    assert all_events(logs, logGroupName=group, logStreamNamePrefix="other") == []
    # logGroupIdentifier: the group's ARN does as well as its name.
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    assert [e["message"] for e in all_events(logs, logGroupIdentifier=arn, filterPattern="WARN")] == LINES[5:6]


def test_filter_log_events_documented_errors(sample_group):
    logs, group = sample_group["logs"], sample_group["group"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName=f"/aws/lambda/{unique('nothing')}")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, logStreamNames=["app/0"], logStreamNamePrefix="app")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, nextToken="not-a-token")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, logGroupIdentifier=group)


def test_put_log_events_into_a_lambda_stream_and_the_wire_format(emulator, clients):
    """A test adds its own lines to a function's stream with the real PutLogEvents, then reads them
    back the way the AWS SDK for Rust asks: awsJson1_1, `X-Amz-Target: Logs_20140328.FilterLogEvents`."""
    logs = emulator.client("logs")
    fn = unique("written")
    bare_function(clients.lam, fn)
    echoed = clients.lam.invoke(FunctionName=fn, Payload=b"{}", LogType="Tail")  # moto's echo
    request_id = echoed["ResponseMetadata"]["RequestId"]
    assert base64.b64decode(echoed["LogResult"]).decode().startswith(f"START RequestId: {request_id} Version: $LATEST\n")
    group = f"/aws/lambda/{fn}"
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    assert re.fullmatch(stream_re("$LATEST"), stream)
    later = int(time.time() * 1000) + 5
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": later, "message": f"{datetime.now(timezone.utc).isoformat()}\t{request_id}\tERROR\tcheckout failed"},
        {"timestamp": later + 1, "message": "plain line"},
    ])

    def raw(body: dict) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(
            emulator.url + "/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "Logs_20140328.FilterLogEvents",
                "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    status, headers, data = raw({"logGroupName": group, "filterPattern": "?ERROR ?\"Task timed out\"", "startTime": later - 1, "endTime": later + 10})
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.1"
    body = json.loads(data)
    assert [e["message"].split("\t")[-1] for e in body["events"]] == ["checkout failed"]
    assert "nextToken" not in body  # absent when there is no more, never null
    status, _, data = raw({"logGroupName": group, "limit": 1})
    body = json.loads(data)
    assert status == 200 and len(body["events"]) == 1 and isinstance(body["nextToken"], str)
    status, headers, data = raw({"logGroupName": "/aws/lambda/none-such"})
    assert status == 400 and json.loads(data)["__type"] == "ResourceNotFoundException"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    # REPORT lines, as ShiftGuard's logs check counts invocations.
    reports = all_events(logs, logGroupName=group, filterPattern='"REPORT RequestId"')
    assert [e["message"].split("\t")[0] for e in reports] == [f"REPORT RequestId: {request_id}"]
