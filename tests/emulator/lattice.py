"""VPC Lattice: which request is which operation (`ROUTES`, every Lattice operation the emulator
names), identifiers given as ids or ARNs (`lattice_arns_to_ids`), and the listener operations moto
lacks or gets wrong: UpdateListener (the whole default action), ListRules (the default rule included,
pages), GetRule, UpdateRule, BatchUpdateRule, CreateRule's priority checks.

Targets and tags (RegisterTargets, DeregisterTargets, ListTargets, TagResource, UntagResource,
ListTagsForResource) are `lattice_targets.py`. What is documented and what is guessed:
`MODELLED.md` ("VPC Lattice")."""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import quote, unquote

from errors import AwsError
from state import LOCK, STATE, lattice_backend, now_iso

ROUTES = [
    ("POST", r"^/targetgroups/(?P<tg>[^/]+)/deregistertargets$", "DeregisterTargets"),
    ("POST", r"^/targetgroups/(?P<tg>[^/]+)/listtargets$", "ListTargets"),
    # The ARN is one URI label (its slashes percent-encoded); PATH_INFO has them decoded.
    ("POST", r"^/tags/(?P<arn>.+)$", "TagResource"),
    ("DELETE", r"^/tags/(?P<arn>.+)$", "UntagResource"),
    ("GET", r"^/tags/(?P<arn>.+)$", "ListTagsForResource"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules/(?P<rule>[^/]+)$", "GetRule"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules/(?P<rule>[^/]+)$", "UpdateRule"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "ListRules"),
    ("POST", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "CreateRule"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "BatchUpdateRule"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)$", "GetListener"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)$", "UpdateListener"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners$", "ListListeners"),
    ("POST", r"^/services/(?P<svc>[^/]+)/listeners$", "CreateListener"),
    ("GET", r"^/services/(?P<svc>[^/]+)$", "GetService"),
    ("POST", r"^/services$", "CreateService"),
    ("POST", r"^/targetgroups$", "CreateTargetGroup"),
    ("GET", r"^/targetgroups/(?P<tg>[^/]+)$", "GetTargetGroup"),
    ("POST", r"^/targetgroups/(?P<tg>[^/]+)/registertargets$", "RegisterTargets"),
    ("POST", r"^/servicenetworks$", "CreateServiceNetwork"),
]


def lattice_arns_to_ids(environ: dict) -> None:
    """VPC Lattice identifiers may be ids or ARNs (`...:service/svc-…`, `.../listener/listener-…`,
    `.../rule/rule-…`, `...:targetgroup/tg-…`). An ARN in the URI (slashes percent-encoded) is
    replaced by the id it ends with, so routing and moto see ids."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    raw_path, _, raw_query = raw.partition("?")
    if "arn%3a" not in raw_path.lower() and "arn:" not in raw_path:
        return
    if raw_path.startswith("/tags/"):
        # TagResource / UntagResource / ListTagsForResource: the ARN is the resource's name, kept
        # whole (`lattice_targets.py`).
        return
    segments = []
    for segment in raw_path.split("/"):
        value = unquote(segment)
        if value.startswith("arn:"):
            value = value.rstrip("/").rsplit("/", 1)[-1]
        segments.append(value)
    path = "/".join(segments)
    environ["PATH_INFO"] = path
    rebuilt = quote(path, safe="/:$-_.~") + (f"?{raw_query}" if raw_query else "")
    environ["RAW_URI"] = environ["REQUEST_URI"] = rebuilt


def lattice_listener(region: str, params: dict):
    from moto.vpclattice.exceptions import ResourceNotFoundException

    try:
        return lattice_backend(region).get_listener(params["svc"], params["lis"])
    except ResourceNotFoundException:
        raise AwsError(404, "ResourceNotFoundException", f"Listener {params['lis']} not found", {"resourceId": params["lis"], "resourceType": "LISTENER"})


def _validate_action(region: str, action: Any, field: str) -> None:
    if not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in ("forward", "fixedResponse"):
        raise AwsError(400, "ValidationException", f"{field} must have exactly one of forward or fixedResponse", {"reason": "fieldValidationFailed", "fieldList": [{"name": field, "message": "invalid action"}]})
    if "fixedResponse" in action:
        code = (action["fixedResponse"] or {}).get("statusCode")
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise AwsError(400, "ValidationException", f"{field}.fixedResponse.statusCode must be 100-599", {"reason": "fieldValidationFailed"})
        return
    groups = (action["forward"] or {}).get("targetGroups")
    if not isinstance(groups, list) or not 1 <= len(groups) <= 10:
        raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups must hold 1 to 10 target groups", {"reason": "fieldValidationFailed"})
    backend = lattice_backend(region)
    # WeightedTargetGroup.weight is "only required if you specify multiple target groups for a
    # forward action" (VPC Lattice API reference): several groups, every one weighted.
    if len(groups) > 1:
        unweighted = [i for i, g in enumerate(groups) if g.get("weight") is None]
        if unweighted:
            raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups[{unweighted[0]}].weight is required when a forward names several target groups",
                           {"reason": "fieldValidationFailed", "fieldList": [{"name": f"{field}.forward.targetGroups[{unweighted[0]}].weight", "message": "required with several target groups"}]})
    for i, group in enumerate(groups):
        weight = group.get("weight")
        if weight is not None and (not isinstance(weight, int) or not 0 <= weight <= 999):
            raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups[{i}].weight must be 0-999", {"reason": "fieldValidationFailed"})
        ident = group.get("targetGroupIdentifier", "")
        tg_id = ident.rsplit("/", 1)[-1]
        if tg_id not in backend.target_groups:
            raise AwsError(404, "ResourceNotFoundException", f"Target group {ident} not found", {"resourceId": ident, "resourceType": "TARGET_GROUP"})


def rules_of(region: str, listener) -> list:
    return sorted(
        (r for r in lattice_backend(region).rules.values() if r.listener_identifier in (listener.id, listener.arn)),
        key=lambda r: r.priority,
    )


def _rule_times(rule) -> tuple[str, str]:
    with LOCK:
        return STATE.rule_times.setdefault(rule.id, (now_iso(), now_iso()))


def _touch_rule(rule) -> None:
    with LOCK:
        created, _ = STATE.rule_times.get(rule.id, (now_iso(), now_iso()))
        STATE.rule_times[rule.id] = (created, now_iso())


def _default_rule(listener) -> dict:
    rule_id = STATE.default_rule_id(listener.id)
    return {
        "arn": f"{listener.arn}/rule/{rule_id}",
        "id": rule_id,
        "name": "default",
        "isDefault": True,
        "action": listener.default_action,
        "createdAt": listener.createdAt,
        "lastUpdatedAt": listener.last_updated_at,
    }


def _rule_dict(listener, rule) -> dict:
    created, updated = _rule_times(rule)
    return {
        "arn": f"{listener.arn}/rule/{rule.id}",
        "id": rule.id,
        "name": rule.name,
        "priority": rule.priority,
        "isDefault": False,
        "action": rule.action,
        "match": rule.match,
        "createdAt": created,
        "lastUpdatedAt": updated,
    }


def lattice_update_listener(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = lattice_listener(region, params)
    action = req.get("defaultAction")
    if action is None:
        raise AwsError(400, "ValidationException", "defaultAction is required", {"reason": "fieldValidationFailed"})
    _validate_action(region, action, "defaultAction")
    with LOCK:
        listener.default_action = action
        listener.last_updated_at = now_iso()
    out = listener.to_dict()
    out.pop("createdAt", None)
    out.pop("lastUpdatedAt", None)
    return 200, out


def lattice_list_rules(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = lattice_listener(region, params)
    query = params.get("_query") or {}
    items = [
        {k: v for k, v in _rule_dict(listener, r).items() if k not in ("action", "match")}
        for r in rules_of(region, listener)
    ]
    default = _default_rule(listener)
    items.append({k: v for k, v in default.items() if k != "action"})
    return 200, page_of(items, query, "rules")


def page_of(items: list, query: dict, token_prefix: str, field_message: str = "must be 1-100") -> dict:
    """One page of a Lattice List operation (ListRules, ListTargets): `maxResults` 1-100 (the model;
    100 when not given); `nextToken` is opaque to callers: here `<token_prefix>-<the next item's
    index>`. `field_message`: the message of the refused maxResults' `fieldList` entry."""
    raw_max = (query.get("maxResults") or [None])[0]
    try:
        max_results = 100 if raw_max is None else int(raw_max)
    except ValueError:
        max_results = 0
    if not 1 <= max_results <= 100:
        raise AwsError(400, "ValidationException", "maxResults must be 1-100", {"reason": "fieldValidationFailed", "fieldList": [{"name": "maxResults", "message": field_message}]})
    token = (query.get("nextToken") or [None])[0]
    start = 0
    if token is not None:
        match = re.match(rf"^{re.escape(token_prefix)}-(\d+)$", token)
        if not match or int(match.group(1)) >= len(items):
            raise AwsError(400, "ValidationException", "The nextToken is invalid", {"reason": "other"})
        start = int(match.group(1))
    out: dict = {"items": items[start : start + max_results]}
    if start + max_results < len(items):
        out["nextToken"] = f"{token_prefix}-{start + max_results}"
    return out


def _find_rule(region: str, listener, rule_ident: str):
    rule_id = rule_ident.rsplit("/", 1)[-1]
    if rule_id == STATE.default_rule_ids.get(listener.id):
        return None
    for rule in rules_of(region, listener):
        if rule.id == rule_id:
            return rule
    raise AwsError(404, "ResourceNotFoundException", f"Rule {rule_ident} not found", {"resourceId": rule_ident, "resourceType": "RULE"})


def lattice_get_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = lattice_listener(region, params)
    rule = _find_rule(region, listener, params["rule"])
    return 200, (_default_rule(listener) if rule is None else _rule_dict(listener, rule))


def _update_rule(region: str, listener, ident: str, req: dict) -> dict:
    rule = _find_rule(region, listener, ident)
    if rule is None:
        raise AwsError(400, "ValidationException", "The default rule of a listener cannot be updated with UpdateRule; use UpdateListener", {"reason": "other"})
    if "action" in req:
        _validate_action(region, req["action"], "action")
    priority = req.get("priority")
    check_rule_priority(region, listener, priority, rule)
    with LOCK:
        if "action" in req:
            rule.action = req["action"]
        if "match" in req:
            rule.match = req["match"]
        if priority is not None:
            rule.priority = priority
        _touch_rule(rule)
    out = _rule_dict(listener, rule)
    for k in ("createdAt", "lastUpdatedAt", "isDefault"):
        out.pop(k, None)
    return out


def check_rule_priority(region: str, listener: Any, priority: Any, rule: Any = None) -> None:
    """A rule's priority: 1-2000 (the API reference), unique among the listener's rules."""
    if priority is None:
        return
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 2000:
        raise AwsError(400, "ValidationException", "priority must be 1-2000", {"reason": "fieldValidationFailed", "fieldList": [{"name": "priority", "message": "must be 1-2000"}]})
    for other in rules_of(region, listener):
        if other is not rule and other.priority == priority:
            # A guess at the code: AWS documents uniqueness, not the error it answers (ConflictException
            # is the operation's modeled conflict).
            raise AwsError(409, "ConflictException", f"A rule with priority {priority} already exists on listener {listener.id}", {"resourceId": other.id, "resourceType": "RULE"})


def lattice_create_rule(region: str, params: dict, req: dict) -> tuple[int, dict] | None:
    """Checks moto does not make (priority range and uniqueness); moto creates the rule."""
    listener = lattice_listener(region, params)
    check_rule_priority(region, listener, req.get("priority"))
    return None


def lattice_update_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = lattice_listener(region, params)
    return 200, _update_rule(region, listener, params["rule"], req)


def lattice_batch_update_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = lattice_listener(region, params)
    rules = req.get("rules")
    # botocore's model bounds `rules` to 1..10 (the API reference's prose has said 5): the model is
    # what SDKs validate against, so the emulator follows it.
    if not isinstance(rules, list) or not 1 <= len(rules) <= 10:
        raise AwsError(400, "ValidationException", "rules must hold 1 to 10 rule updates", {"reason": "fieldValidationFailed"})
    successful, unsuccessful = [], []
    for update in rules:
        ident = update.get("ruleIdentifier", "")
        try:
            successful.append(_update_rule(region, listener, ident, update))
        except AwsError as err:
            unsuccessful.append({"ruleIdentifier": ident, "failureCode": err.code, "failureMessage": err.message})
    return 200, {"successful": successful, "unsuccessful": unsuccessful}


EXTENDED: dict[tuple[str, str], Callable[[str, dict, dict], tuple[int, Any] | None]] = {
    ("vpc-lattice", "UpdateListener"): lattice_update_listener,
    ("vpc-lattice", "ListRules"): lattice_list_rules,
    ("vpc-lattice", "CreateRule"): lattice_create_rule,
    ("vpc-lattice", "GetRule"): lattice_get_rule,
    ("vpc-lattice", "UpdateRule"): lattice_update_rule,
    ("vpc-lattice", "BatchUpdateRule"): lattice_batch_update_rule,
}
