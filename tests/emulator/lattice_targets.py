"""VPC Lattice targets and tags for the emulator.

moto 5.2.5 has no RegisterTargets, DeregisterTargets or ListTargets at all. Its VPC Lattice tags are
kept per ARN, but the extension turns every ARN in a Lattice URI into the id it ends with (so that
identifiers may be ids or ARNs), which made `/tags/{resourceArn}` tag the bare id: the tags given at
creation were not the ones ListTagsForResource answered, and an ARN that names nothing answered `{}`.
Here:

* RegisterTargets / DeregisterTargets / ListTargets (restJson1, `POST /targetgroups/{id}/…`): targets
  kept on moto's target group (`shiftguard_targets`); a LAMBDA target group holds one target, a
  Lambda function ARN (optionally qualified) of an existing function, version or alias in the
  group's account and Region; ListTargets pages (`maxResults` 1-100, `nextToken`), filters by
  `targets`, and reports each target's status (UNUSED while no listener or rule forwards to the
  group; UNAVAILABLE for LAMBDA and ALB groups, which are not health-checked; HEALTHY otherwise;
  DRAINING for a while after deregistration when a test asks for it);
* TagResource / UntagResource / ListTagsForResource on the ARN of any Lattice resource (service,
  listener, rule, target group, service network, associations, access log subscriptions), the same
  tags CreateX's `tags` set; documented limits (key 1-128, value 0-256, letters, digits, spaces and
  `_ . : / = + - @`, no `aws:` keys, 50 tags per resource); an unknown ARN is
  ResourceNotFoundException (`tags.py`).

Lambda's TagResource / UntagResource, with the same limits, are `lambda_service.py`; the routes of
these operations are `lattice.ROUTES`.

Test controls (`/_shiftguard/lattice/...`): the draining time of deregistered targets and a target's
status. What is documented and what is guessed: `MODELLED.md` ("VPC Lattice targets and tags").
"""

from __future__ import annotations

import re
import time
from typing import Any

from errors import AwsError
from lambda_invocations import NUMERIC_VERSION
from lambda_service import LAMBDA_ARN
from lattice import page_of, rules_of
from state import DEFAULT_ACCOUNT, LOCK, STATE, lambda_backend, lattice_backend
from tags import MAX_TAGS, tag_problem, user_tag_count


# Test controls: seconds a deregistered target stays DRAINING (AWS: "The default draining time is 5
# minutes"; here 0 unless a test sets it), and statuses tests impose on single targets.
SETTINGS = {"drainingSeconds": 0.0}


# (region, target group id, target id, port or None) -> {"status", "reasonCode"?}
OVERRIDES: dict[tuple[str, str, str, int | None], dict] = {}


TARGET_STATUSES = ("DRAINING", "UNAVAILABLE", "HEALTHY", "UNHEALTHY", "INITIAL", "UNUSED")


def _validation(message: str, field: str | None = None, reason: str = "fieldValidationFailed") -> AwsError:
    extra: dict = {"reason": reason}
    if field is not None:
        extra["fieldList"] = [{"name": field, "message": message}]
    return AwsError(400, "ValidationException", message, extra)


def _not_found(ident: str, resource_type: str, message: str | None = None) -> AwsError:
    return AwsError(404, "ResourceNotFoundException", message or f"{resource_type.replace('_', ' ').title()} {ident} not found",
                       {"resourceId": ident, "resourceType": resource_type})


def target_group(region: str, ident: str) -> Any:
    tg_id = ident.rsplit("/", 1)[-1]
    tg = lattice_backend(region).target_groups.get(tg_id)
    if tg is None:
        raise _not_found(ident, "TARGET_GROUP", f"Target group {ident} not found")
    return tg


def _registered(tg: Any) -> list[dict]:
    if not hasattr(tg, "shiftguard_targets"):
        tg.shiftguard_targets = []
    return tg.shiftguard_targets


def _draining(tg: Any) -> list[dict]:
    """Deregistered targets still DRAINING ({id, port?, until}); the expired ones dropped."""
    now = time.time()
    kept = [t for t in getattr(tg, "shiftguard_draining", []) if t["until"] > now]
    tg.shiftguard_draining = kept
    return kept


def _default_port(tg: Any) -> int:
    config = tg.config or {}
    if isinstance(config.get("port"), int):
        return config["port"]
    return 443 if config.get("protocol") == "HTTPS" else 80


def _checked_targets(tg: Any, targets: Any, field: str, low: int, high: int) -> list[dict]:
    """The request's targets as {id, port?}: a LAMBDA group's have no port, the others' default to
    the group's port."""
    if targets is None and low == 0:
        return []
    if not isinstance(targets, list) or not low <= len(targets) <= high:
        raise _validation(f"{field} must hold {low} to {high} targets", field)
    out = []
    for i, target in enumerate(targets):
        ident = target.get("id") if isinstance(target, dict) else None
        if not isinstance(ident, str) or not 1 <= len(ident) <= 200:
            raise _validation(f"{field}[{i}].id must be a string of 1-200 characters", f"{field}[{i}].id")
        port = target.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise _validation(f"{field}[{i}].port must be 1-65535", f"{field}[{i}].port")
        if tg.type == "LAMBDA":
            if port is not None:
                raise _validation(f"{field}[{i}].port: a target of a LAMBDA target group has no port", f"{field}[{i}].port")
            out.append({"id": ident})
        else:
            out.append({"id": ident, "port": port if port is not None else _default_port(tg)})
    return out


def _key(target: dict) -> tuple[str, int | None]:
    return target["id"], target.get("port")


def _lambda_target_problem(region: str, arn: str) -> tuple[str, str] | None:
    """(failureCode, failureMessage) when `arn` cannot be a LAMBDA group's target, else None."""
    found = LAMBDA_ARN.match(arn)
    if not found:
        return "UnsupportedTarget", f"Target {arn} is not a Lambda function ARN"
    _, fn_region, account, name, qualifier = found.groups()
    if fn_region != region or account != DEFAULT_ACCOUNT:
        return "UnsupportedTarget", "The Lambda function and the target group must be in the same account and Region"
    try:
        lambda_backend(region).get_function(name, qualifier)
    except Exception:
        what = f"function {name}" + (f" qualifier {qualifier}" if qualifier else "")
        return "TargetNotFound", f"Lambda {what} does not exist"
    if qualifier and qualifier != "$LATEST" and not NUMERIC_VERSION.match(qualifier):
        try:
            lambda_backend(region).get_alias(qualifier, name)
        except Exception:
            return "TargetNotFound", f"Lambda function {name} has no alias {qualifier}"
    return None


def _requested_targets(region: str, params: dict, req: dict) -> tuple[Any, list[dict]]:
    """RegisterTargets and DeregisterTargets: the group and its 1-100 targets, checked."""
    tg = target_group(region, params["tg"])
    return tg, _checked_targets(tg, req.get("targets"), "targets", 1, 100)


def register_targets(region: str, params: dict, req: dict) -> tuple[int, dict]:
    tg, targets = _requested_targets(region, params, req)
    successful, unsuccessful = [], []
    with LOCK:
        registered = _registered(tg)
        if tg.type == "LAMBDA":
            # "If it's a Lambda target, you can only have one target in a target group" (RegisterTargets).
            wanted = {t["id"] for t in registered} | {t["id"] for t in targets}
            if len(wanted) > 1:
                raise _validation(
                    f"A target group of type LAMBDA can have only one target; {tg.id} would have {len(wanted)}: "
                    f"{', '.join(sorted(wanted))}. Deregister the current target first.",
                    reason="other",
                )
        for target in targets:
            problem = _lambda_target_problem(region, target["id"]) if tg.type == "LAMBDA" else None
            if problem is not None:
                unsuccessful.append({**target, "failureCode": problem[0], "failureMessage": problem[1]})
                continue
            if _key(target) not in {_key(t) for t in registered}:
                registered.append(dict(target))
            # Registering a target that is still draining takes it back.
            tg.shiftguard_draining = [t for t in _draining(tg) if _key(t) != _key(target)]
            successful.append(dict(target))
    return 200, {"successful": successful, "unsuccessful": unsuccessful}


def deregister_targets(region: str, params: dict, req: dict) -> tuple[int, dict]:
    tg, targets = _requested_targets(region, params, req)
    successful, unsuccessful = [], []
    with LOCK:
        registered = _registered(tg)
        draining = _draining(tg)
        for target in targets:
            if _key(target) not in {_key(t) for t in registered}:
                unsuccessful.append({**target, "failureCode": "TargetNotRegistered",
                                     "failureMessage": f"Target {target['id']} is not registered with target group {tg.id}"})
                continue
            registered[:] = [t for t in registered if _key(t) != _key(target)]
            OVERRIDES.pop((region, tg.id, *_key(target)), None)
            if SETTINGS["drainingSeconds"] > 0:
                draining.append({**target, "until": time.time() + SETTINGS["drainingSeconds"]})
            successful.append(dict(target))
        tg.shiftguard_draining = draining
    return 200, {"successful": successful, "unsuccessful": unsuccessful}


def _forwards_to(action: Any, tg_id: str) -> bool:
    groups = (((action or {}).get("forward") or {}).get("targetGroups")) or []
    return any(str(g.get("targetGroupIdentifier", "")).rsplit("/", 1)[-1] == tg_id for g in groups)


def in_use(region: str, tg: Any) -> bool:
    """Whether a listener's default action or a rule forwards to the group (any weight)."""
    backend = lattice_backend(region)
    return any(_forwards_to(l.default_action, tg.id) for l in list(backend.listeners.values())) or any(
        _forwards_to(r.action, tg.id) for r in list(backend.rules.values())
    )


def _summary(region: str, tg: Any, target: dict, draining: bool, used: bool) -> dict:
    out: dict = {"id": target["id"]}
    if target.get("port") is not None:
        out["port"] = target["port"]
    override = OVERRIDES.get((region, tg.id, *_key(target)))
    if draining:
        out["status"] = "DRAINING"
    elif override is not None:
        out.update(override)
    elif not used:
        out.update(status="UNUSED", reasonCode="TargetGroupNotInUse")
    elif tg.type in ("LAMBDA", "ALB"):
        # "Health checks do not support Lambda target groups" / "… Application Load Balancer target groups".
        out.update(status="UNAVAILABLE", reasonCode="HealthCheckNotSupported")
    elif ((tg.config or {}).get("healthCheck") or {}).get("enabled") is False:
        out.update(status="UNAVAILABLE", reasonCode="HealthCheckDisabled")
    else:
        out["status"] = "HEALTHY"
    return out


def list_targets(region: str, params: dict, req: dict) -> tuple[int, dict]:
    tg = target_group(region, params["tg"])
    query = params.get("_query") or {}
    wanted = _checked_targets(tg, req.get("targets"), "targets", 0, 20) if req.get("targets") else []
    # A filter target without a port matches the id on any port.
    explicit = [(t["id"], (r.get("port") if isinstance(r, dict) else None)) for t, r in zip(wanted, req.get("targets") or [])]
    with LOCK:
        used = in_use(region, tg)
        items = [_summary(region, tg, t, False, used) for t in _registered(tg)]
        items += [_summary(region, tg, t, True, used) for t in _draining(tg)]
    if explicit:
        items = [i for i in items if any(i["id"] == ident and (port is None or i.get("port") == port) for ident, port in explicit)]
    return 200, page_of(items, query, "targets", field_message="maxResults must be 1-100")


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------


# TagResource's `resourceArn` pattern (botocore's model).
LATTICE_ARN = re.compile(r"^arn:[a-z0-9][-.a-z0-9]{0,62}:vpc-lattice:([a-z0-9][-.a-z0-9]{0,62})?:(\d{12})?:([^/].{0,1023})$")


def lattice_resource_key(region: str, arn: str) -> str:
    """The key moto's tagger keeps the resource's tags under (the ARN it was created with), for the
    ARN of an existing resource in this Region and account; ResourceNotFoundException otherwise."""
    if not LATTICE_ARN.match(arn):
        raise _validation(f"resourceArn {arn!r} is not a VPC Lattice ARN", "resourceArn")
    parts = arn.split(":", 5)
    resource = parts[5]
    kind = resource.split("/", 1)[0]
    if parts[3] != region or parts[4] != DEFAULT_ACCOUNT:
        raise _not_found(arn, kind.upper(), f"Resource {arn} not found")
    backend = lattice_backend(region)
    path = resource.split("/")
    simple = {
        "service": backend.services,
        "targetgroup": backend.target_groups,
        "servicenetwork": backend.service_networks,
        "accesslogsubscription": backend.access_log_subscriptions,
        "servicenetworkserviceassociation": backend.service_network_service_associations,
        "servicenetworkvpcassociation": backend.service_network_vpc_associations,
        "servicenetworkresourceassociation": backend.service_network_resource_associations,
    }
    if len(path) == 2 and path[0] in simple and path[1] in simple[path[0]]:
        return simple[path[0]][path[1]].arn
    if len(path) in (4, 6) and path[0] == "service" and path[2] == "listener":
        listener = backend.listeners.get(path[3])
        if listener is not None and listener.service_identifier == path[1]:
            if len(path) == 4:
                return listener.arn
            if path[4] == "rule":
                if path[5] == STATE.default_rule_ids.get(listener.id):
                    return f"{listener.arn}/rule/{path[5]}"
                for rule in rules_of(region, listener):
                    if rule.id == path[5]:
                        # moto tagged the rule (CreateRule `tags`) under the ARN it made for it.
                        return rule.arn
    kinds = {"targetgroup": "TARGET_GROUP", "servicenetwork": "SERVICE_NETWORK"}
    label = "RULE" if "/rule/" in resource else "LISTENER" if "/listener/" in resource else kinds.get(kind, kind.upper())
    raise _not_found(arn, label, f"Resource {arn} not found")


def lattice_tag_resource(region: str, params: dict, req: dict) -> tuple[int, dict]:
    key = lattice_resource_key(region, params["arn"])
    tags = req.get("tags")
    if not isinstance(tags, dict) or len(tags) > 200:
        raise _validation("tags must be a map of 0-200 tags", "tags")
    for k, v in tags.items():
        problem = tag_problem(k, v)
        if problem:
            raise _validation(problem, "tags")
    tagger = lattice_backend(region).tagger
    with LOCK:
        merged = {**tagger.get_tag_dict_for_resource(key), **tags}
        if user_tag_count(merged) > MAX_TAGS:
            raise _validation(f"A resource can have at most {MAX_TAGS} tags; this would make {user_tag_count(merged)}", "tags")
        # An existing key takes the new value ("it updates the value of that tag").
        tagger.tag_resource(key, tagger.convert_dict_to_tags_input(tags))
    return 200, {}


def lattice_untag_resource(region: str, params: dict, req: dict) -> tuple[int, dict]:
    key = lattice_resource_key(region, params["arn"])
    keys = (params.get("_query") or {}).get("tagKeys")
    if keys is None or len(keys) > 200:
        raise _validation("tagKeys must list 0-200 tag keys", "tagKeys")
    for k in keys:
        if not 1 <= len(k) <= 128:
            raise _validation(f"tag key {k!r} must be 1-128 characters", "tagKeys")
    with LOCK:
        lattice_backend(region).tagger.untag_resource_using_names(key, keys)
    return 200, {}


def lattice_list_tags(region: str, params: dict, req: dict) -> tuple[int, dict]:
    key = lattice_resource_key(region, params["arn"])
    with LOCK:
        return 200, {"tags": dict(lattice_backend(region).tagger.get_tag_dict_for_resource(key))}


EXTENDED = {
    ("vpc-lattice", "RegisterTargets"): register_targets,
    ("vpc-lattice", "DeregisterTargets"): deregister_targets,
    ("vpc-lattice", "ListTargets"): list_targets,
    ("vpc-lattice", "TagResource"): lattice_tag_resource,
    ("vpc-lattice", "UntagResource"): lattice_untag_resource,
    ("vpc-lattice", "ListTagsForResource"): lattice_list_tags,
}


# ---------------------------------------------------------------------------------------------
# Test controls
# ---------------------------------------------------------------------------------------------


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/lattice/draining":
        if method == "POST":
            seconds = (body or {}).get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise ValueError("seconds must be a number >= 0")
            SETTINGS["drainingSeconds"] = float(seconds)
        return 200, {"seconds": SETTINGS["drainingSeconds"]}
    if path == "/_shiftguard/lattice/target-status" and method == "POST":
        body = body or {}
        region = body.get("region", "us-east-1")
        try:
            tg = target_group(region, str(body.get("targetGroup", "")))
        except AwsError as err:
            return 404, {"message": err.message}
        ident, port = body.get("id"), body.get("port")
        if not isinstance(ident, str):
            raise ValueError("id must be the target's id")
        if tg.type != "LAMBDA" and port is None:
            port = _default_port(tg)
        if tg.type == "LAMBDA":
            port = None
        status, reason = body.get("status"), body.get("reasonCode")
        if status is not None and (status not in TARGET_STATUSES or status == "DRAINING"):
            raise ValueError(f"status must be one of {', '.join(s for s in TARGET_STATUSES if s != 'DRAINING')} or null "
                             "(DRAINING: deregister the target with a draining time)")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("reasonCode must be a string")
        with LOCK:
            if (ident, port) not in {_key(t) for t in _registered(tg)}:
                return 409, {"message": f"target {ident} (port {port}) is not registered with {tg.id}"}
            if status is None:
                OVERRIDES.pop((region, tg.id, ident, port), None)
            else:
                OVERRIDES[(region, tg.id, ident, port)] = {"status": status, **({"reasonCode": reason} if reason else {})}
        return 200, {"targetGroup": tg.id, "id": ident, "port": port, "status": status, "reasonCode": reason if status else None}
    return None
