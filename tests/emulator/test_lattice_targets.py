"""VPC Lattice targets (RegisterTargets, DeregisterTargets, ListTargets) and tags, Lambda function tags,
and CloudWatch DescribeAlarms after SetAlarmState: what the `shift` function calls (`lattice.py`,
MODELLED.md "VPC Lattice targets and tags")."""

from __future__ import annotations

import time

import pytest

from conftest import make_function, unique

ACCOUNT = "123456789012"
HEALTH_N_A = {"status": "UNAVAILABLE", "reasonCode": "HealthCheckNotSupported"}
NOT_IN_USE = {"status": "UNUSED", "reasonCode": "TargetGroupNotInUse"}


def fn_arn(name: str, qualifier: str | None = None, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")


@pytest.fixture
def fn(clients):
    """A function with versions 1 and 2 and alias `live` on 1."""
    name = unique("orders")
    assert make_function(clients.lam, name) == ["1", "2"]
    return name


@pytest.fixture
def lattice_service(clients):
    """A service whose listener forwards 90/10 to two LAMBDA target groups, and a third group no
    listener or rule uses."""
    vl = clients.lattice
    service = vl.create_service(name=unique("svc"))
    production = vl.create_target_group(name=unique("prod"), type="LAMBDA")
    canary = vl.create_target_group(name=unique("canary"), type="LAMBDA")
    spare = vl.create_target_group(name=unique("spare"), type="LAMBDA")
    listener = vl.create_listener(
        serviceIdentifier=service["id"], name=unique("lis"), protocol="HTTPS", port=443,
        defaultAction={"forward": {"targetGroups": [{"targetGroupIdentifier": production["id"], "weight": 90},
                                                     {"targetGroupIdentifier": canary["id"], "weight": 10}]}},
        tags={"team": "orders"},
    )
    return {"service": service, "listener": listener, "production": production, "canary": canary, "spare": spare}


def items(vl, tg: str, **kwargs) -> list[dict]:
    return vl.list_targets(targetGroupIdentifier=tg, **kwargs)["items"]


# ---- RegisterTargets / ListTargets on LAMBDA target groups ------------------------------------


def test_a_lambda_version_registers_and_lists_as_not_health_checked(clients, fn, lattice_service):
    vl = clients.lattice
    production, spare = lattice_service["production"], lattice_service["spare"]
    out = vl.register_targets(targetGroupIdentifier=production["arn"], targets=[{"id": fn_arn(fn, "1")}])
    assert (out["successful"], out["unsuccessful"]) == ([{"id": fn_arn(fn, "1")}], [])
    # Lambda targets are not health-checked: UNAVAILABLE, and no port.
    assert items(vl, production["id"]) == [{"id": fn_arn(fn, "1"), **HEALTH_N_A}]
    assert items(vl, production["arn"]) == items(vl, production["id"])
    # Registering the registered target again changes nothing.
    assert vl.register_targets(targetGroupIdentifier=production["id"], targets=[{"id": fn_arn(fn, "1")}])["successful"] == [{"id": fn_arn(fn, "1")}]
    assert len(items(vl, production["id"])) == 1
    # A group no listener or rule forwards to: UNUSED until one does.
    vl.register_targets(targetGroupIdentifier=spare["id"], targets=[{"id": fn_arn(fn, "live")}])
    assert items(vl, spare["id"]) == [{"id": fn_arn(fn, "live"), **NOT_IN_USE}]
    ids = dict(serviceIdentifier=lattice_service["service"]["id"], listenerIdentifier=lattice_service["listener"]["id"])
    vl.create_rule(**ids, name=unique("rule"), priority=10, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/spare"}}}},
                   action={"forward": {"targetGroups": [{"targetGroupIdentifier": spare["arn"], "weight": 0}]}})
    assert items(vl, spare["id"]) == [{"id": fn_arn(fn, "live"), **HEALTH_N_A}]


def test_a_lambda_target_group_holds_one_target(clients, fn, lattice_service):
    vl = clients.lattice
    canary = lattice_service["canary"]["id"]
    # Two in one request: refused whole.
    with pytest.raises(vl.exceptions.ValidationException) as caught:
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}, {"id": fn_arn(fn, "2")}])
    assert "only one target" in caught.value.response["Error"]["Message"]
    assert items(vl, canary) == []
    vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}])
    # Another version of the same function is another target: refused, the first stays.
    with pytest.raises(vl.exceptions.ValidationException):
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "2")}])
    with pytest.raises(vl.exceptions.ValidationException):
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn)}])
    assert [i["id"] for i in items(vl, canary)] == [fn_arn(fn, "1")]
    # Deregister, then register the next version: the shift from one version to the next.
    assert vl.deregister_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}])["successful"] == [{"id": fn_arn(fn, "1")}]
    vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "2")}])
    assert items(vl, canary) == [{"id": fn_arn(fn, "2"), **HEALTH_N_A}]


@pytest.mark.parametrize("target, code", [
    (lambda fn: fn, "UnsupportedTarget"),                                    # a name, not an ARN
    (lambda fn: f"{ACCOUNT}:function:{fn}", "UnsupportedTarget"),            # a partial ARN
    (lambda fn: fn_arn(fn, "1", region="eu-west-1"), "UnsupportedTarget"),   # another Region
    (lambda fn: fn_arn(fn, "1", account="210987654321"), "UnsupportedTarget"),  # another account
    (lambda fn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0123456789abcdef", "UnsupportedTarget"),
    (lambda fn: fn_arn(fn + "-missing"), "TargetNotFound"),
    (lambda fn: fn_arn(fn, "9"), "TargetNotFound"),
    (lambda fn: fn_arn(fn, "nosuchalias"), "TargetNotFound"),
])
def test_a_lambda_target_is_an_existing_function_in_the_groups_account_and_region(clients, fn, lattice_service, target, code):
    vl = clients.lattice
    canary = lattice_service["canary"]["id"]
    ident = target(fn)
    out = vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": ident}])
    assert out["successful"] == []
    [failure] = out["unsuccessful"]
    assert (failure["id"], failure["failureCode"]) == (ident, code) and failure["failureMessage"]
    assert items(vl, canary) == []


@pytest.mark.parametrize("qualifier", [None, "$LATEST", "1", "live"])
def test_qualified_unqualified_and_alias_arns_are_targets(clients, fn, qualifier):
    vl = clients.lattice
    tg = vl.create_target_group(name=unique("tg"), type="LAMBDA")
    out = vl.register_targets(targetGroupIdentifier=tg["id"], targets=[{"id": fn_arn(fn, qualifier)}])
    assert (out["successful"], out["unsuccessful"]) == ([{"id": fn_arn(fn, qualifier)}], [])
    assert items(vl, tg["id"]) == [{"id": fn_arn(fn, qualifier), **NOT_IN_USE}]


def test_request_errors(clients, fn, lattice_service):
    vl = clients.lattice
    canary = lattice_service["canary"]["id"]
    with pytest.raises(vl.exceptions.ValidationException):
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1"), "port": 443}])
    for call in (vl.register_targets, vl.deregister_targets):
        with pytest.raises(vl.exceptions.ResourceNotFoundException):
            call(targetGroupIdentifier="tg-0000000000000000a", targets=[{"id": fn_arn(fn, "1")}])
    with pytest.raises(vl.exceptions.ResourceNotFoundException):
        vl.list_targets(targetGroupIdentifier=f"arn:aws:vpc-lattice:us-east-1:{ACCOUNT}:targetgroup/tg-0000000000000000a")
    assert items(vl, canary) == []


# ---- DeregisterTargets -------------------------------------------------------------------------


def test_deregister_targets(clients, fn, lattice_service):
    vl = clients.lattice
    production = lattice_service["production"]
    vl.register_targets(targetGroupIdentifier=production["id"], targets=[{"id": fn_arn(fn, "1")}])
    out = vl.deregister_targets(targetGroupIdentifier=production["arn"], targets=[{"id": fn_arn(fn, "1")}])
    assert (out["successful"], out["unsuccessful"]) == ([{"id": fn_arn(fn, "1")}], [])
    # Removed at once (no draining time unless a test sets one).
    assert items(vl, production["id"]) == []
    again = vl.deregister_targets(targetGroupIdentifier=production["id"], targets=[{"id": fn_arn(fn, "1")}])
    assert again["successful"] == []
    [failure] = again["unsuccessful"]
    assert (failure["id"], failure["failureCode"]) == (fn_arn(fn, "1"), "TargetNotRegistered")


def test_a_deregistered_target_drains_for_the_time_a_test_sets(emulator, clients, fn, lattice_service):
    vl = clients.lattice
    canary = lattice_service["canary"]["id"]
    vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}])
    assert emulator.control("POST", "/_shiftguard/lattice/draining", {"seconds": 0.6}) == {"seconds": 0.6}
    try:
        vl.deregister_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}])
        assert items(vl, canary) == [{"id": fn_arn(fn, "1"), "status": "DRAINING"}]
        # A draining target is no longer registered: the group takes the next version, and the
        # draining one cannot be deregistered again.
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "2")}])
        assert items(vl, canary) == [{"id": fn_arn(fn, "2"), **HEALTH_N_A}, {"id": fn_arn(fn, "1"), "status": "DRAINING"}]
        assert vl.deregister_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "1")}])["unsuccessful"][0]["failureCode"] == "TargetNotRegistered"
        time.sleep(0.7)
        assert items(vl, canary) == [{"id": fn_arn(fn, "2"), **HEALTH_N_A}]
    finally:
        emulator.control("POST", "/_shiftguard/lattice/draining", {"seconds": 0})
    assert emulator.control("GET", "/_shiftguard/lattice/draining") == {"seconds": 0.0}


# ---- Other target types: ports, pages, filters, statuses ----------------------------------------


def test_ip_targets_pages_filters_and_statuses(emulator, clients, lattice_service):
    vl = clients.lattice
    tg = vl.create_target_group(name=unique("ips"), type="IP", config={"port": 8080, "protocol": "HTTP", "vpcIdentifier": "vpc-0123456789abcdef0"})
    ips = [f"10.0.0.{i}" for i in range(1, 6)]
    out = vl.register_targets(targetGroupIdentifier=tg["id"], targets=[{"id": ip} for ip in ips] + [{"id": ips[0], "port": 9090}])
    # The group's port when a target names none (the CLI's register-targets example answers it).
    assert out["successful"] == [{"id": ip, "port": 8080} for ip in ips] + [{"id": ips[0], "port": 9090}]
    assert all(i["status"] == "UNUSED" for i in items(vl, tg["id"]))
    ids = dict(serviceIdentifier=lattice_service["service"]["id"], listenerIdentifier=lattice_service["listener"]["id"])
    vl.create_rule(**ids, name=unique("rule"), priority=20, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/ip"}}}},
                   action={"forward": {"targetGroups": [{"targetGroupIdentifier": tg["id"], "weight": 1}]}})
    seen, token, pages = [], None, 0
    while True:
        page = vl.list_targets(targetGroupIdentifier=tg["id"], maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["items"]) <= 2
        seen += page["items"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert seen == [{"id": ip, "port": 8080, "status": "HEALTHY"} for ip in ips] + [{"id": ips[0], "port": 9090, "status": "HEALTHY"}]
    with pytest.raises(vl.exceptions.ValidationException):
        vl.list_targets(targetGroupIdentifier=tg["id"], nextToken="not-a-token")
    # Filters: an id alone matches every port; with a port, that target only; unregistered: left out.
    assert [(i["id"], i["port"]) for i in items(vl, tg["id"], targets=[{"id": ips[0]}])] == [(ips[0], 8080), (ips[0], 9090)]
    assert [(i["id"], i["port"]) for i in items(vl, tg["id"], targets=[{"id": ips[0], "port": 9090}, {"id": "10.9.9.9"}])] == [(ips[0], 9090)]
    # A status a test imposes (health checks failing), and cleared again.
    emulator.control("POST", "/_shiftguard/lattice/target-status", {"targetGroup": tg["arn"], "id": ips[2], "status": "UNHEALTHY", "reasonCode": "HealthCheckFailed"})
    assert items(vl, tg["id"], targets=[{"id": ips[2]}]) == [{"id": ips[2], "port": 8080, "status": "UNHEALTHY", "reasonCode": "HealthCheckFailed"}]
    emulator.control("POST", "/_shiftguard/lattice/target-status", {"targetGroup": tg["id"], "id": ips[2], "status": None})
    assert items(vl, tg["id"], targets=[{"id": ips[2]}])[0]["status"] == "HEALTHY"
    out = vl.deregister_targets(targetGroupIdentifier=tg["id"], targets=[{"id": ips[0]}])
    assert out["successful"] == [{"id": ips[0], "port": 8080}]
    assert [(i["id"], i["port"]) for i in items(vl, tg["id"], targets=[{"id": ips[0]}])] == [(ips[0], 9090)]


def test_target_operations_have_names_for_faults_and_the_call_log(emulator, clients, fn, lattice_service):
    vl = clients.lattice
    canary = lattice_service["canary"]["arn"]
    # Two: the clients retry once (botocore's max_attempts counts retries).
    emulator.control("POST", "/_shiftguard/faults", {"service": "vpc-lattice", "operation": "ListTargets", "kind": "throttle", "count": 2})
    with pytest.raises(vl.exceptions.ThrottlingException):
        vl.list_targets(targetGroupIdentifier=canary)
    assert vl.list_targets(targetGroupIdentifier=canary)["items"] == []
    vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "2")}])
    vl.deregister_targets(targetGroupIdentifier=canary, targets=[{"id": fn_arn(fn, "2")}])
    calls = emulator.control("GET", "/_shiftguard/calls?service=vpc-lattice&operation=DeregisterTargets")
    assert calls and calls[-1]["path"] == f"/targetgroups/{lattice_service['canary']['id']}/deregistertargets"
    with pytest.raises(AssertionError, match="400"):
        emulator.control("POST", "/_shiftguard/lattice/target-status", {"targetGroup": canary, "id": fn_arn(fn, "2"), "status": "DRAINING"})
    with pytest.raises(AssertionError, match="409"):
        emulator.control("POST", "/_shiftguard/lattice/target-status", {"targetGroup": canary, "id": fn_arn(fn, "2"), "status": "UNHEALTHY"})
    with pytest.raises(AssertionError, match="400"):
        emulator.control("POST", "/_shiftguard/lattice/draining", {"seconds": -1})


# ---- VPC Lattice tags --------------------------------------------------------------------------


def test_listener_tags_by_the_arn_get_listener_answers(clients, lattice_service):
    vl = clients.lattice
    svc, lis = lattice_service["service"], lattice_service["listener"]
    arn = vl.get_listener(serviceIdentifier=svc["arn"], listenerIdentifier=lis["id"])["arn"]
    assert arn == lis["arn"] == f"{svc['arn']}/listener/{lis['id']}"
    # The tags CreateListener set.
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "orders"}
    state = "step 2 of 5 weight=10 at:2026-11-22T09.15 by shift-fn_v1 @ops +/x"
    vl.tag_resource(resourceArn=arn, tags={"shiftguard:shift": state, "team": "payments", "empty": ""})
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "payments", "shiftguard:shift": state, "empty": ""}
    vl.tag_resource(resourceArn=arn, tags={"shiftguard:shift": "done"})
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"]["shiftguard:shift"] == "done"
    vl.untag_resource(resourceArn=arn, tagKeys=["empty", "never-set"])
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "payments", "shiftguard:shift": "done"}
    # Other listeners, the service and the target groups keep their own.
    assert vl.list_tags_for_resource(resourceArn=svc["arn"])["tags"] == {}
    vl.tag_resource(resourceArn=svc["arn"], tags={"k": "svc"})
    vl.tag_resource(resourceArn=lattice_service["canary"]["arn"], tags={"k": "tg"})
    assert vl.list_tags_for_resource(resourceArn=svc["arn"])["tags"] == {"k": "svc"}
    assert vl.list_tags_for_resource(resourceArn=lattice_service["canary"]["arn"])["tags"] == {"k": "tg"}
    assert "k" not in vl.list_tags_for_resource(resourceArn=arn)["tags"]


def test_rule_tags(clients, lattice_service):
    vl = clients.lattice
    ids = dict(serviceIdentifier=lattice_service["service"]["id"], listenerIdentifier=lattice_service["listener"]["id"])
    rule = vl.create_rule(**ids, name=unique("rule"), priority=30, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/r"}}}},
                          action={"fixedResponse": {"statusCode": 404}}, tags={"made": "with-rule"})
    arn = vl.get_rule(**ids, ruleIdentifier=rule["id"])["arn"]
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"made": "with-rule"}
    vl.tag_resource(resourceArn=arn, tags={"made": "later"})
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"made": "later"}
    default = next(r for r in vl.list_rules(**ids)["items"] if r["isDefault"])
    vl.tag_resource(resourceArn=default["arn"], tags={"default": "yes"})
    assert vl.list_tags_for_resource(resourceArn=default["arn"])["tags"] == {"default": "yes"}


# The three tag operations, as a call on (client, resource ARN).
TAG_CALLS = [
    pytest.param(lambda vl, a: vl.list_tags_for_resource(resourceArn=a), id="ListTagsForResource"),
    pytest.param(lambda vl, a: vl.tag_resource(resourceArn=a, tags={"a": "b"}), id="TagResource"),
    pytest.param(lambda vl, a: vl.untag_resource(resourceArn=a, tagKeys=["a"]), id="UntagResource"),
]
# ARNs a tag operation refuses (from the listener's ARN), and the error.
BAD_TAG_ARNS = [
    pytest.param(lambda arn: arn.rsplit("/", 1)[0] + "/listener-0000000000000000a", "ResourceNotFoundException", id="no such listener"),
    pytest.param(lambda arn: arn.replace(":us-east-1:", ":eu-west-1:"), "ResourceNotFoundException", id="another Region"),
    pytest.param(lambda arn: f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:x", "ValidationException", id="not a Lattice ARN"),
]


@pytest.mark.parametrize("arn_of, error", BAD_TAG_ARNS)
@pytest.mark.parametrize("call", TAG_CALLS)
def test_lattice_tag_operations_refuse_arns_of_nothing(clients, lattice_service, call, arn_of, error):
    vl = clients.lattice
    with pytest.raises(getattr(vl.exceptions, error)):
        call(vl, arn_of(lattice_service["listener"]["arn"]))


@pytest.mark.parametrize("bad", [{"k" * 129: "v"}, {"k": "v" * 257}, {"k": '{"step": 2}'}, {"a;b": "v"}, {"aws:thing": "v"}, {"AWS:Thing": "v"}],
                         ids=["key of 129", "value of 257", "JSON punctuation", "semicolon", "aws: prefix", "AWS: prefix"])
def test_lattice_tags_outside_the_limits_are_refused(clients, lattice_service, bad):
    vl = clients.lattice
    arn = lattice_service["listener"]["arn"]
    with pytest.raises(vl.exceptions.ValidationException):
        vl.tag_resource(resourceArn=arn, tags=bad)
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "orders"}  # nothing changed


def test_lattice_tag_limits(clients, lattice_service):
    vl = clients.lattice
    arn = lattice_service["listener"]["arn"]
    vl.tag_resource(resourceArn=arn, tags={"k" * 128: "v" * 256})
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"]["k" * 128] == "v" * 256
    # At most 50 tags per resource: a request that would make 51 changes nothing.
    before = vl.list_tags_for_resource(resourceArn=arn)["tags"]
    with pytest.raises(vl.exceptions.ValidationException):
        vl.tag_resource(resourceArn=arn, tags={f"t{i}": "x" for i in range(51 - len(before))})
    assert vl.list_tags_for_resource(resourceArn=arn)["tags"] == before
    vl.tag_resource(resourceArn=arn, tags={f"t{i}": "x" for i in range(50 - len(before))})
    assert len(vl.list_tags_for_resource(resourceArn=arn)["tags"]) == 50


# ---- Lambda function tags ----------------------------------------------------------------------


def test_lambda_function_tags_on_the_unqualified_arn(clients, fn):
    lam = clients.lam
    arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    assert arn == fn_arn(fn)
    state = "shift 2 of 5: weight=0.25 from v1 to v2 at 2026-11-22T09:15 by ci-run_42 @ops +/x"
    out = lam.tag_resource(Resource=arn, Tags={"shiftguard:shift": state, "owner": "orders"})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"shiftguard:shift": state, "owner": "orders"}
    lam.tag_resource(Resource=arn, Tags={"owner": "payments", "empty": ""})
    assert lam.list_tags(Resource=arn)["Tags"] == {"shiftguard:shift": state, "owner": "payments", "empty": ""}
    assert lam.get_function(FunctionName=fn)["Tags"]["shiftguard:shift"] == state
    out = lam.untag_resource(Resource=arn, TagKeys=["owner", "empty", "never-set"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"shiftguard:shift": state}
    for bad in ({"k" * 129: "v"}, {"k": "v" * 257}, {"k": '{"step": 2}'}, {"k": "a,b"}, {"aws:k": "v"}):
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.tag_resource(Resource=arn, Tags=bad)
    assert lam.list_tags(Resource=arn)["Tags"] == {"shiftguard:shift": state}
    # Tags are the function's: a version's or an alias's ARN is refused.
    for qualifier in ("1", "live"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.tag_resource(Resource=fn_arn(fn, qualifier), Tags={"a": "b"})
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.untag_resource(Resource=fn_arn(fn, qualifier), TagKeys=["shiftguard:shift"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"shiftguard:shift": state}
    for call in (lambda a: lam.list_tags(Resource=a), lambda a: lam.tag_resource(Resource=a, Tags={"a": "b"}),
                 lambda a: lam.untag_resource(Resource=a, TagKeys=["a"])):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            call(fn_arn(fn + "-missing"))


# ---- CloudWatch: DescribeAlarms after SetAlarmState ---------------------------------------------


def test_describe_alarms_by_name_reports_each_alarms_state(clients):
    """With the engine off, SetAlarmState is the control a test uses to put an alarm in ALARM (the
    engine on, it also notifies: test_alarms.py)."""
    cw = clients.cw
    canary, other = unique("orders-canary-5xx"), unique("orders-p99")
    for name in (canary, other):
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/VpcLattice", MetricName="HTTPCode_5XX_Count", Statistic="Sum",
                            Dimensions=[{"Name": "TargetGroup", "Value": "tg-0canary0000000000"}], Period=60, EvaluationPeriods=1,
                            Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    before = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=[canary, other])["MetricAlarms"]}
    cw.set_alarm_state(AlarmName=canary, StateValue="ALARM", StateReason="canary 5xx")
    found = cw.describe_alarms(AlarmNames=[canary, other, unique("no-such-alarm")])
    states = {a["AlarmName"]: (a["StateValue"], a["StateReason"]) for a in found["MetricAlarms"]}
    assert set(states) == {canary, other} and found["CompositeAlarms"] == []
    assert states[canary] == ("ALARM", "canary 5xx")
    assert states[other][0] == before[other] != "ALARM"
    cw.set_alarm_state(AlarmName=canary, StateValue="OK", StateReason="recovered")
    assert cw.describe_alarms(AlarmNames=[canary])["MetricAlarms"][0]["StateValue"] == "OK"
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.set_alarm_state(AlarmName=unique("no-such-alarm"), StateValue="ALARM", StateReason="x")
