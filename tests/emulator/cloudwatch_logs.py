"""CloudWatch Logs for the emulator: what Lambda writes for every invocation, and FilterLogEvents.

* Every invocation the emulator runs (a canned behaviour, a bound Runtime API process or moto's echo;
  through Invoke, a CodeDeploy hook, an SNS delivery or an alarm action) writes Lambda-shaped lines
  into moto's CloudWatch Logs backend: log group `/aws/lambda/<function>` (created when missing),
  log stream `YYYY/MM/DD/[<executed version>]<32 lowercase hex>` (one stream per execution
  environment: here a "sandbox" per function, executed version and UTC day, a second one only while
  the first is busy with a concurrent invocation), lines `START`, the behaviour's `log_lines`, the
  error or timeout line, `END`, `REPORT`. Tests add lines of their own with the real PutLogEvents.
* FilterLogEvents (awsJson1_1, `Logs_20140328.FilterLogEvents`) is answered here, not by moto: moto
  5.2.5 ignores `logStreamNamePrefix`, treats `?term`, `-term`, JSON and mixed quoted/bare patterns
  as "match everything", returns streams one after the other (not interleaved by time) and answers
  `"nextToken": null`. Here: the documented unstructured syntax (terms, phrases, `?`, `-`,
  `%regex%`) and JSON patterns, interleaved pages that give every event exactly once.

What is documented and what is guessed: `MODELLED.md` ("CloudWatch Logs").
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from errors import AwsError
from state import DEFAULT_ACCOUNT, LOCK, lambda_backend

# (region, function, executed version, UTC day) -> [{"stream": name, "busy": bool}]
_SANDBOXES: dict[tuple[str, str, str, str], list[dict]] = {}

DEFAULT_MEMORY_MB = 128
# "Max Memory Used" when a behaviour does not say (`max_memory_used_mb`): a guess, capped at the
# function's memory size.
DEFAULT_MAX_MEMORY_USED_MB = 20
# Lambda's `X-Amz-Log-Result` (LogType=Tail): "the last 4 KB of the execution log".
TAIL_BYTES = 4096


def logs_backend(region: str) -> Any:
    from moto.logs.models import logs_backends

    return logs_backends[DEFAULT_ACCOUNT][region]


def group_name(function: str) -> str:
    return f"/aws/lambda/{function}"


def _iso(ms: int) -> str:
    """Lambda runtimes' time stamp: `2026-11-22T06:32:08.123Z`."""
    return datetime.fromtimestamp(ms / 1000.0, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Execution environments ("sandboxes") and the lines Lambda writes
# ---------------------------------------------------------------------------------------------


def claim(region: str, function: str, version: str, started: float) -> dict:
    """The sandbox an invocation runs in: a free one of this function version today, or a new one
    (with its own log stream) when every one is busy. `release` gives it back."""
    day = datetime.fromtimestamp(started, timezone.utc).strftime("%Y/%m/%d")
    key = (region, function, str(version), day)
    with LOCK:
        pool = _SANDBOXES.setdefault(key, [])
        for sandbox in pool:
            if not sandbox["busy"]:
                sandbox["busy"] = True
                return sandbox
        sandbox = {"stream": f"{day}/[{version}]{uuid.uuid4().hex}", "busy": True}
        pool.append(sandbox)
        return sandbox


def release(sandbox: dict) -> None:
    with LOCK:
        sandbox["busy"] = False


def function_memory(region: str, function: str, version: str) -> int:
    try:
        fn = lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(function, version)
        return int(fn.memory_size or DEFAULT_MEMORY_MB)
    except Exception:
        return DEFAULT_MEMORY_MB


def error_line_json(payload: bytes | str | None) -> str:
    """The JSON of a function error as a Node.js runtime logs it (`{"errorType", "errorMessage"[,
    "stack"]}`), from the error payload the invocation returned."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else (payload or "")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        out: dict = {"errorType": str(body.get("errorType") or "Error"), "errorMessage": str(body.get("errorMessage") or "")}
        if isinstance(body.get("stack"), list):
            out["stack"] = body["stack"]
    else:
        out = {"errorType": "Error", "errorMessage": text}
    return json.dumps(out, separators=(",", ":"))


def invocation_lines(
    request_id: str,
    version: str,
    started_ms: float,
    ended_ms: float,
    log_lines: list[str] | None = None,
    error_payload: bytes | str | None = None,
    failed: bool = False,
    timed_out_after: float | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_memory_used_mb: int | None = None,
) -> list[dict]:
    """The log events of one invocation, in order, with its time stamps (epoch ms)."""
    ended_ms = max(ended_ms, started_ms)
    duration = ended_ms - started_ms
    t0, t1 = int(started_ms), int(ended_ms)
    events = [{"timestamp": t0, "message": f"START RequestId: {request_id} Version: {version}"}]
    # `{requestId}` in a line is the invocation's request id: what a managed runtime's logger (or a
    # custom runtime's own, e.g. tracing with the Lambda context) writes into each line.
    lines = [line.replace("{requestId}", request_id) for line in (log_lines or [])]
    for i, line in enumerate(lines):
        # The function's own lines fall between START and the end of the invocation.
        at = t0 + ((t1 - t0) * (i + 1)) // (len(lines) + 1)
        events.append({"timestamp": at, "message": line})
    if timed_out_after is not None:
        # Lambda's own text for a timeout (the same for every runtime).
        events.append({"timestamp": t1, "message": f"{_iso(t1)} {request_id} Task timed out after {timed_out_after:.2f} seconds"})
    elif failed:
        # What the Node.js runtime logs for an unhandled error. The exact line varies by runtime
        # (Python logs `[ERROR] …`, the Rust runtime logs through `tracing`): ours is Node-like.
        events.append({"timestamp": t1, "message": f"{_iso(t1)}\t{request_id}\tERROR\tInvoke Error \t{error_line_json(error_payload)}"})
    events.append({"timestamp": t1, "message": f"END RequestId: {request_id}"})
    used = DEFAULT_MAX_MEMORY_USED_MB if max_memory_used_mb is None else int(max_memory_used_mb)
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {max(1, math.ceil(duration))} ms"
        f"\tMemory Size: {memory_mb} MB\tMax Memory Used: {min(used, memory_mb)} MB"
    )
    events.append({"timestamp": t1, "message": report})
    return events


def write(region: str, function: str, stream: str, events: list[dict]) -> None:
    """Into moto's backend, as Lambda would: the group and the stream made when missing (a test may
    have deleted them)."""
    backend = logs_backend(region)
    group = group_name(function)
    with LOCK:
        backend.ensure_log_group(group)
        backend.ensure_log_stream(group, stream)
        backend.groups[group].put_log_events(stream, events)


def record_invocation(
    region: str,
    function: str,
    version: str,
    request_id: str,
    started: float,
    ended: float,
    sandbox: dict | None = None,
    **details: Any,
) -> dict:
    """Write one invocation's lines; returns {"logStreamName", "messages"}. Logging is best effort
    (as on Lambda, a failed log write never fails the invocation)."""
    if sandbox is None:
        sandbox = claim(region, function, version, started)
    try:
        events = invocation_lines(
            request_id,
            version,
            started * 1000.0,
            ended * 1000.0,
            memory_mb=function_memory(region, function, version),
            **details,
        )
        try:
            write(region, function, sandbox["stream"], events)
        except Exception as exc:  # noqa: BLE001
            import sys

            print(f"lambda log write failed: {exc!r}", file=sys.stderr)
        return {"logStreamName": sandbox["stream"], "messages": [e["message"] for e in events]}
    finally:
        release(sandbox)


def tail(messages: list[str]) -> str:
    """`X-Amz-Log-Result`: the last 4 KB of the execution log, base64."""
    text = "".join(m if m.endswith("\n") else m + "\n" for m in messages).encode()
    return base64.b64encode(text[-TAIL_BYTES:]).decode()


# ---------------------------------------------------------------------------------------------
# Filter patterns for unstructured log events
# ---------------------------------------------------------------------------------------------


class PatternError(ValueError):
    pass


def _tokens(pattern: str) -> list[tuple[str, str, bool]]:
    """(operator '' | '?' | '-', text, quoted) for each term of an unstructured pattern."""
    out: list[tuple[str, str, bool]] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i].isspace():
            i += 1
            continue
        op = ""
        if pattern[i] in "?-" and i + 1 < n and not pattern[i + 1].isspace():
            op = pattern[i]
            i += 1
        if pattern[i] == '"':
            i += 1
            text = []
            while i < n and pattern[i] != '"':
                if pattern[i] == "\\" and i + 1 < n:
                    # A guess: `\"` and `\\` inside a phrase are a quote and a backslash.
                    i += 1
                text.append(pattern[i])
                i += 1
            if i >= n:
                raise PatternError("Invalid filter pattern: unterminated quoted phrase")
            i += 1
            out.append((op, "".join(text), True))
        else:
            start = i
            while i < n and not pattern[i].isspace() and pattern[i] != '"':
                i += 1
            out.append((op, pattern[start:i], False))
    return out


def compile_pattern(pattern: str | None) -> Callable[[str], bool]:
    """A predicate on a log event's message, per the documented filter pattern syntax for
    unstructured log events:

    * empty (or `" "`, the documented "match everything"): every event;
    * `ERROR Exception`: every term must appear (case-sensitive);
    * `"INTERNAL SERVER ERROR"`: the exact phrase, spaces and punctuation included;
    * `?ERROR ?"Task timed out"`: any of the `?` terms;
    * `ERROR -ARGUMENTS`: `-` excludes events containing the term;
    * `%regex%`: a regular expression (the documented subset: no parentheses);
    * `{ … }`: a JSON pattern (`json_pattern`), for JSON log events only.

    Guessed where AWS is silent: a bare term matches anywhere in the message (substring, not only
    as a whole word); bare terms after a `?` term belong to that `?` group (`?a b ?c` is
    "a and b, or c", as the CDK's anyTermGroup renders), bare terms before the first `?` form a group
    of their own; `-` terms exclude whatever the groups matched. Space-delimited patterns
    (`[a, b]`) are not modelled: InvalidParameterException saying so."""
    text = (pattern or "").strip()
    if not text or text in ('" "', '""'):
        return lambda message: True
    if text[0] == "{":
        return json_pattern(text)
    if text[0] == "[":
        raise PatternError("space-delimited filter patterns are not modelled by this emulator (unstructured terms, phrases, %regex% and JSON patterns are)")
    if len(text) >= 2 and text[0] == "%" and text[-1] == "%":
        regex = _regex(text)
        return lambda message: regex.search(message) is not None
    groups: list[list[str]] = []
    excluded: list[str] = []
    current: list[str] | None = None
    leading: list[str] = []
    for op, term, _quoted in _tokens(text):
        if term == "":
            continue
        if op == "-":
            excluded.append(term)
        elif op == "?":
            current = [term]
            groups.append(current)
        elif current is not None:
            current.append(term)
        else:
            leading.append(term)
    if leading:
        groups.insert(0, leading)

    def matches(message: str) -> bool:
        if any(term in message for term in excluded):
            return False
        if not groups:
            return True  # only exclusions
        return any(all(term in message for term in group) for group in groups)

    return matches


def _regex(text: str) -> re.Pattern:
    """`%…%`: the documented regex subset (no parentheses)."""
    inner = text[1:-1]
    if "(" in inner or ")" in inner:
        raise PatternError("Invalid filter pattern: the ( and ) operators are not supported in regular expressions")
    try:
        return re.compile(inner)
    except re.error as exc:
        raise PatternError(f"Invalid filter pattern: {exc}")


_JSON_TOKEN = re.compile(
    r"""\s*(?:
      (?P<paren>[()])
    | (?P<logic>&&|\|\|)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<quoted>"(?:\\.|[^"\\])*")
    | (?P<regex>%[^%]*%)
    | (?P<word>[^\s()&|!=<>"%]+)
    )""",
    re.VERBOSE,
)
_MISSING = object()


def _json_tokens(body: str) -> list[tuple[str, str]]:
    tokens, i = [], 0
    while i < len(body):
        if body[i:].strip() == "":
            break
        m = _JSON_TOKEN.match(body, i)
        if not m or m.end() == i:
            raise PatternError(f"Invalid filter pattern: cannot read {body[i:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        i = m.end()
    return tokens


def _select(document: Any, selector: str) -> Any:
    """`$.a.b[0].c` in a parsed JSON document; _MISSING when the path is not there."""
    if not selector.startswith("$"):
        raise PatternError(f"Invalid filter pattern: a JSON property selector starts with $, not {selector!r}")
    parts = re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", selector[1:])
    if "".join(f".{n}" if n else f"[{i}]" for n, i in parts) != selector[1:]:
        raise PatternError(f"Invalid filter pattern: bad property selector {selector!r}")
    value = document
    for name, index in parts:
        if name:
            if not isinstance(value, dict) or name not in value:
                return _MISSING
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
    return value


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def json_pattern(text: str) -> Callable[[str], bool]:
    """A JSON filter pattern (*Using filter patterns to match terms in JSON log events*):
    `{ $.eventType = "UpdateTrail" }`, `{ $.sourceIPAddress != 123.123.* }` (`*` a wildcard),
    `{ $.latency > 50 }` (`=, !=, <, >, <=, >=` on numbers), `{ $.users[0].email = %regex% }`,
    `{ $.x IS NULL }`, `{ $.x NOT EXISTS }`, `{ $.flag IS TRUE }` / `IS FALSE`, combined with `&&`,
    `||` and parentheses. Only events whose message is a JSON object can match.

    Guessed: a comparison on a property that is not there is false (`!=` too); a number literal
    also equals a string property with the same text; `&&` binds tighter than `||`."""
    if not text.endswith("}"):
        raise PatternError("Invalid filter pattern: a JSON pattern ends with }")
    tokens = _json_tokens(text[1:-1])
    pos = 0

    def peek(offset: int = 0) -> tuple[str, str]:
        return tokens[pos + offset] if pos + offset < len(tokens) else ("end", "")

    def take() -> tuple[str, str]:
        nonlocal pos
        token = peek()
        pos += 1
        return token

    def parse_joined(symbol: str, operand: Callable[[], Callable[[Any], bool]],
                     combine: Callable[[Iterable[bool]], bool]) -> Callable[[Any], bool]:
        """Operands joined by `symbol` (`||`: any of them holds, `&&`: all of them)."""
        terms = [operand()]
        while peek() == ("logic", symbol):
            take()
            terms.append(operand())
        return terms[0] if len(terms) == 1 else (lambda doc: combine(t(doc) for t in terms))

    def parse_or() -> Callable[[Any], bool]:
        return parse_joined("||", parse_and, any)

    def parse_and() -> Callable[[Any], bool]:
        return parse_joined("&&", parse_unary, all)

    def parse_unary() -> Callable[[Any], bool]:
        if peek() == ("paren", "("):
            take()
            inner = parse_or()
            if take() != ("paren", ")"):
                raise PatternError("Invalid filter pattern: unbalanced parentheses")
            return inner
        kind, selector = take()
        if kind != "word":
            raise PatternError(f"Invalid filter pattern: expected a property selector, got {selector!r}")
        _select({}, selector)  # checks the selector's shape
        if peek() in (("word", "IS"), ("word", "NOT")):
            first, second = take()[1], take()[1]
            check = {
                ("IS", "NULL"): lambda v: v is None,
                ("IS", "TRUE"): lambda v: v is True,
                ("IS", "FALSE"): lambda v: v is False,
                ("NOT", "EXISTS"): lambda v: v is _MISSING,
            }.get((first, second))
            if check is None:
                raise PatternError(f"Invalid filter pattern: {first} {second}")
            return lambda doc: check(_select(doc, selector))
        kind, op = take()
        if kind != "op":
            raise PatternError(f"Invalid filter pattern: expected a comparison after {selector}")
        kind, literal = take()
        if kind not in ("word", "quoted", "regex"):
            raise PatternError(f"Invalid filter pattern: expected a value after {selector} {op}")
        return _comparison(selector, op, kind, literal)

    predicate = parse_or()
    if pos != len(tokens):
        raise PatternError(f"Invalid filter pattern: unexpected {peek()[1]!r}")

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict) and predicate(document)

    return matches


def _comparison(selector: str, op: str, kind: str, literal: str) -> Callable[[Any], bool]:
    if kind == "regex":
        if op not in ("=", "!="):
            raise PatternError("Invalid filter pattern: a regular expression compares with = or !=")
        regex = _regex(literal)
        want = op == "="

        def by_regex(doc: Any) -> bool:
            value = _select(doc, selector)
            return isinstance(value, str) and (regex.search(value) is not None) == want

        return by_regex
    text = json.loads(literal) if kind == "quoted" else literal
    number = None if kind == "quoted" else _number(text)
    if op in ("<", ">", "<=", ">="):
        if number is None:
            raise PatternError(f"Invalid filter pattern: {op} compares numbers, not {literal!r}")
        test = {"<": lambda v: v < number, ">": lambda v: v > number, "<=": lambda v: v <= number, ">=": lambda v: v >= number}[op]

        def by_number(doc: Any) -> bool:
            value = _select(doc, selector)
            return isinstance(value, (int, float)) and not isinstance(value, bool) and test(value)

        return by_number
    wildcard = re.compile("^" + ".*".join(re.escape(part) for part in text.split("*")) + "$", re.S)

    def equal(value: Any) -> bool:
        if isinstance(value, bool) or value is None or value is _MISSING:
            return False
        if isinstance(value, (int, float)):
            return number is not None and float(value) == number
        return isinstance(value, str) and wildcard.match(value) is not None

    def by_equality(doc: Any) -> bool:
        value = _select(doc, selector)
        if value is _MISSING:
            return False
        return equal(value) if op == "=" else not equal(value)

    return by_equality


# ---------------------------------------------------------------------------------------------
# FilterLogEvents
# ---------------------------------------------------------------------------------------------


def _invalid(message: str) -> AwsError:
    return AwsError(400, "InvalidParameterException", message)


def _encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode_token(token: Any, group: str) -> dict:
    try:
        state = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if state.get("g") != group or not isinstance(state.get("k"), list) or len(state["k"]) != 4:
            raise ValueError
        return state
    except Exception:
        raise _invalid("The specified nextToken is invalid.")


def _group_of(req: dict) -> str:
    name, ident = req.get("logGroupName"), req.get("logGroupIdentifier")
    if (name is None) == (ident is None):
        raise _invalid("You must include either logGroupIdentifier or logGroupName, but not both.")
    if name is not None:
        return str(name)
    ident = str(ident)
    # An ARN (`arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]`) or a name.
    if ident.startswith("arn:"):
        rest = ident.split(":log-group:", 1)[-1]
        return rest[:-2] if rest.endswith(":*") else rest
    return ident


def filter_log_events(region: str, req: dict) -> dict:
    group_id = _group_of(req)
    names = req.get("logStreamNames")
    prefix = req.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive: specify one of them, not both.")
    if names is not None and (not isinstance(names, list) or not 1 <= len(names) <= 100):
        raise _invalid("1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length between 1 and 100")
    limit = req.get("limit", 10000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
        raise _invalid(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000")
    start, end = req.get("startTime"), req.get("endTime")
    try:
        match = compile_pattern(req.get("filterPattern"))
    except PatternError as exc:
        raise _invalid(str(exc))
    head = req.get("startFromHead", True) is not False
    token = req.get("nextToken")
    cursor = None
    if token is not None:
        state = _decode_token(token, group_id)
        cursor, head = tuple(state["k"]), bool(state.get("h", True))

    backend = logs_backend(region)
    with LOCK:
        group = backend.groups.get(group_id)
        if group is None:
            raise AwsError(400, "ResourceNotFoundException", "The specified log group does not exist.")
        streams = list(group.streams.items())
    found = []
    for stream_name, stream in streams:
        if names is not None and stream_name not in names:
            continue
        if prefix is not None and not stream_name.startswith(prefix):
            continue
        for event in list(stream.events):
            # Both ends inclusive: "Events with a timestamp before [startTime] / later than
            # [endTime] are not returned" (API reference).
            if start is not None and event.timestamp < start:
                continue
            if end is not None and event.timestamp > end:
                continue
            if not match(event.message):
                continue
            # "Sorted by event timestamp, the timestamp when the event was ingested by CloudWatch
            # Logs, and the ID of the PutLogEvents request" (API reference); the event id, then the
            # stream, keep the order total so that pages never repeat or skip an event.
            key = (int(event.timestamp), int(event.ingestion_time), int(event.event_id), stream_name)
            found.append((key, event))
    found.sort(key=lambda pair: pair[0], reverse=not head)
    if cursor is not None:
        found = [p for p in found if (p[0] > cursor if head else p[0] < cursor)]
    page = found[:limit]
    out: dict = {
        "events": [
            {
                "logStreamName": key[3],
                "timestamp": int(event.timestamp),
                "message": event.message,
                "ingestionTime": int(event.ingestion_time),
                "eventId": str(event.event_id),
            }
            for key, event in page
        ],
        # "As of May 15, 2020, this parameter is no longer supported. This parameter returns an
        # empty list." (API reference)
        "searchedLogStreams": [],
    }
    if len(found) > limit:
        out["nextToken"] = _encode_token({"g": group_id, "k": list(page[-1][0]), "h": head})
    return out


# The CloudWatch Logs operations the extension answers itself (the rest are moto's).
OPS: dict[str, Callable[[str, dict], dict]] = {
    "FilterLogEvents": filter_log_events,
}
