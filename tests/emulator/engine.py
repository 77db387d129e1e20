"""CodeDeploy's deployment lifecycle for Lambda: deployments that run themselves (the engine) and
rollback deployments (engine on or off).

The engine (opt-in, `engine_settings`): CreateDeployment on a Lambda deployment group starts a
`Run` that validates the alias, runs the AppSpec's hooks (invoked asynchronously with exactly
`{DeploymentId, LifecycleEventHookExecutionId}`, waiting for their reports), shifts the alias as
the deployment configuration says (`deployment_configs`), watches the group's alarms and stops,
fails or rolls back as CodeDeploy does. When it is off, CreateDeployment makes a deployment that
stays `Created` until a test sets its status, as before.

Rollbacks are new deployments (`start_rollback`): made by StopDeployment with auto-rollback, by the
control plane, or by a run that failed or was stopped; the engine runs them when it ran the
original (or is on), else they restore the alias in one step (`finish_rollback`).

What is documented and what is guessed: `MODELLED.md`.
"""

from __future__ import annotations

import json
import random
import string
import sys
import threading
import time
import uuid
from typing import Any

import alarms
from codedeploy_model import IN_FLIGHT, appspec_of, lambda_function_info, note_rollback, rollback_info_of, rollback_revision, target_status
from deployment_configs import routing_of
from engine_settings import COND, SETTINGS, notify, now_naive
from errors import AwsError
from lambda_invocations import function_exists, invoke_async
from state import DEFAULT_ACCOUNT, LOCK, STATE, HookExecution, codedeploy_backend, lambda_backend, utc_now_naive


LIFECYCLE = ("Start", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "End")


HOOKED = ("BeforeAllowTraffic", "AfterAllowTraffic")


ID_ALPHABET = string.ascii_uppercase + string.digits


def new_deployment_id(backend: Any) -> str:
    """AWS-shaped: `d-` and 9 upper-case letters or digits."""
    while True:
        candidate = "d-" + "".join(random.choice(ID_ALPHABET) for _ in range(9))
        if candidate not in backend.deployments:
            return candidate


def rekey(backend: Any, deployment: Any) -> str:
    """Give a moto deployment (UUID id) an AWS-shaped id."""
    with LOCK:
        new_id = new_deployment_id(backend)
        backend.deployments.pop(deployment.deployment_id, None)
        deployment.deployment_id = new_id
        backend.deployments[new_id] = deployment
    return new_id


class Interrupted(Exception):
    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "stop" | "alarm" | "failure" | "gone"
        self.code = code
        self.message = message


class Run:
    """One deployment the engine runs."""

    def __init__(self, region: str, deployment: Any, rollback_of: str | None) -> None:
        self.region = region
        self.deployment = deployment
        self.rollback_of = rollback_of
        self.events = {name: {"lifecycleEventName": name, "status": "Pending"} for name in LIFECYCLE}
        self.stop_request: dict | None = None
        self.target_status = "Pending"
        self.last_updated = time.time()
        self.finished = False

    @property
    def id(self) -> str:
        return self.deployment.deployment_id

    def event(self, name: str, status: str, diagnostics: dict | None = None) -> None:
        with LOCK:
            entry = self.events[name]
            if status == "InProgress":
                entry["startTime"] = time.time()
            elif status in ("Succeeded", "Failed", "Skipped"):
                entry.setdefault("startTime", time.time())
                entry["endTime"] = time.time()
            entry["status"] = status
            if diagnostics:
                entry["diagnostics"] = diagnostics
            self.last_updated = time.time()

    def lifecycle_events(self) -> list[dict]:
        with LOCK:
            return [dict(self.events[name]) for name in LIFECYCLE]


class Engine:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self._ticker: threading.Thread | None = None

    # -- what the engine runs ---------------------------------------------------------------

    def run_of(self, deployment_id: str) -> Run | None:
        with LOCK:
            for run in self.runs.values():
                if run.deployment.deployment_id == deployment_id:
                    return run
        return None

    def manages(self, deployment: Any) -> bool:
        return self.run_of(deployment.deployment_id) is not None

    def start(self, region: str, deployment: Any, rollback_of: str | None = None) -> Run:
        run = Run(region, deployment, rollback_of)
        with LOCK:
            self.runs[deployment.deployment_id] = run
        threading.Thread(target=self._run, args=(run,), daemon=True, name=f"deployment-{deployment.deployment_id}").start()
        self.ensure_ticker()
        return run

    def ensure_ticker(self) -> None:
        with LOCK:
            if self._ticker is None or not self._ticker.is_alive():
                self._ticker = threading.Thread(target=alarms.tick_forever, daemon=True, name="engine-ticker")
                self._ticker.start()

    # -- CreateDeployment ---------------------------------------------------------------------

    def create_deployment(self, region: str, req: dict) -> dict:
        backend = codedeploy_backend(region)
        app_name = req.get("applicationName")
        group_name = req.get("deploymentGroupName")
        if not app_name:
            raise AwsError(400, "ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
        if app_name not in backend.applications:
            raise AwsError(400, "ApplicationDoesNotExistException", f"The application {app_name} does not exist with the user or AWS account.")
        if not group_name:
            raise AwsError(400, "DeploymentGroupNameRequiredException", "The deployment group name was not specified.")
        group = backend.deployment_groups.get(app_name, {}).get(group_name)
        if group is None:
            raise AwsError(400, "DeploymentGroupDoesNotExistException", f"The deployment group {group_name} does not exist with the user or AWS account.")
        platform = backend.applications[app_name].compute_platform
        revision = req.get("revision")
        if not revision:
            raise AwsError(400, "RevisionRequiredException", "The revision ID was not specified.")
        if platform != "Lambda":
            # Not the engine's business: moto's CreateDeployment (stays Created), as before.
            return {"deploymentId": backend.create_deployment(application_name=app_name, deployment_group_name=group_name, revision=revision, deployment_config_name=req.get("deploymentConfigName"), description=req.get("description"))}
        if revision.get("revisionType") == "S3":
            # AWS reads the AppSpec from the bucket; this emulator does not (yet).
            raise AwsError(400, "InvalidRevisionException", "S3 revisions are not served by this emulator: pass the AppSpec as AppSpecContent or String.")
        if revision.get("revisionType") not in ("AppSpecContent", "String"):
            raise AwsError(400, "InvalidRevisionException", "A Lambda deployment's revision must be AppSpecContent, String or S3.")
        spec = appspec_of(revision)
        if not isinstance(spec, dict):
            raise AwsError(400, "InvalidRevisionException", "The AppSpec must be a JSON or YAML object.")
        config_name = req.get("deploymentConfigName") or group.deployment_config_name
        routing_of(config_name, platform)  # DeploymentConfigDoesNotExistException
        description = req.get("description")
        if description is not None and len(description) > 512:
            raise AwsError(400, "DescriptionTooLongException", "The description is too long.")
        with LOCK:
            for other in backend.deployments.values():
                if other.application_name == app_name and other.deployment_group_name == group_name and other.status in IN_FLIGHT and self.manages(other):
                    raise AwsError(400, "DeploymentLimitExceededException", f"The Deployment Group '{group_name}' already has an active Deployment '{other.deployment_id}'")
            temp_id = backend.create_deployment(
                application_name=app_name,
                deployment_group_name=group_name,
                revision=revision,
                deployment_config_name=config_name,
                description=description,
                auto_rollback_configuration=req.get("autoRollbackConfiguration"),
                override_alarm_configuration=req.get("overrideAlarmConfiguration"),
            )
            deployment = backend.deployments[temp_id]
            deployment_id = rekey(backend, deployment)
            deployment.deployment_overview = {**deployment.deployment_overview, "Pending": 1}
            self.start(region, deployment)
        return {"deploymentId": deployment_id}

    # -- configuration a run reads --------------------------------------------------------------

    @staticmethod
    def _auto_rollback(deployment: Any) -> dict:
        config = deployment.auto_rollback_configuration
        if config is None:
            config = deployment.deployment_group.auto_rollback_configuration
        return config or {}

    def rolls_back_on(self, deployment: Any, event: str) -> bool:
        config = self._auto_rollback(deployment)
        return bool(config.get("enabled")) and event in (config.get("events") or [])

    @staticmethod
    def alarm_configuration(deployment: Any) -> dict:
        override = getattr(deployment, "override_alarm_configuration", None)
        config = override if isinstance(override, dict) and override else deployment.deployment_group.alarm_configuration
        if config is None:
            return {}
        if not isinstance(config, dict):  # moto's AlarmConfiguration object
            return {"enabled": config.enabled, "alarms": config.alarms, "ignorePollAlarmFailure": config.ignore_poll_alarm_failure}
        return config

    # -- StopDeployment -------------------------------------------------------------------------

    def request_stop(self, run: Run, auto_rollback: bool | None) -> dict:
        with COND:
            if run.deployment.status not in IN_FLIGHT or run.finished:
                raise AwsError(400, "DeploymentAlreadyCompletedException", f"The deployment {run.id} is already completed.")
            if auto_rollback is None:
                rollback = self.rolls_back_on(run.deployment, "DEPLOYMENT_STOP_ON_REQUEST")
            else:
                rollback = auto_rollback
            run.stop_request = {"rollback": bool(rollback) and run.rollback_of is None}
            STATE.stopped.append({"deploymentId": run.id, "autoRollbackEnabled": bool(auto_rollback)})
            COND.notify_all()
        if rollback:
            return {"status": "Pending", "statusMessage": "Stopping Pending. Stopping to roll back."}
        return {"status": "Pending", "statusMessage": "Stopping Pending."}

    # -- the run ------------------------------------------------------------------------------

    def _check(self, run: Run, monitor_alarms: bool = True) -> None:
        """Raise Interrupted when the run must stop: a stop request, an alarm, or a deployment
        someone else finished (the control plane, a rollback)."""
        d = run.deployment
        if d.status not in ("Created", "InProgress"):
            raise Interrupted("gone", "", f"status set to {d.status} from outside the engine")
        if run.stop_request is not None:
            raise Interrupted("stop", "MANUAL_STOP", "The deployment was stopped by a StopDeployment request.")
        if monitor_alarms and run.rollback_of is None:
            alarm = self._alarm_in_alarm(run)
            if alarm is not None:
                raise alarm

    def _alarm_in_alarm(self, run: Run) -> Interrupted | None:
        config = self.alarm_configuration(run.deployment)
        if not config.get("enabled"):
            return None
        from moto.cloudwatch.models import cloudwatch_backends

        alarms = cloudwatch_backends[DEFAULT_ACCOUNT][run.region].alarms
        for entry in config.get("alarms") or []:
            name = entry.get("name") if isinstance(entry, dict) else str(entry)
            alarm = alarms.get(name)
            if alarm is None:
                if config.get("ignorePollAlarmFailure"):
                    continue
                return Interrupted("failure", "ALARM_ACTIVE", f"The alarm {name} could not be read (it does not exist) and ignorePollAlarmFailure is false.")
            if alarm.state_value == "ALARM":
                return Interrupted("alarm", "ALARM_ACTIVE", f"One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <{name}>")
        return None

    def _wait(self, run: Run, seconds: float, done=None, monitor_alarms: bool = True) -> bool:
        """Wait `seconds` real seconds, or until `done()`; check interruptions throughout.
        Returns True when `done()` became true."""
        deadline = time.time() + seconds
        with COND:
            while True:
                self._check(run, monitor_alarms)
                if done is not None and done():
                    return True
                remaining = deadline - time.time()
                if remaining <= 0:
                    return False
                COND.wait(min(remaining, SETTINGS.tick))

    def _set_alias(self, run: Run, info: dict, version: str, weights: dict) -> None:
        with LOCK:
            self._check(run, monitor_alarms=False)
            alias = lambda_backend(run.region).get_alias(info["functionAlias"], info["functionName"])
            alias.update(None, version, {"AdditionalVersionWeights": weights} if weights else {})
            alias.revision_id = str(uuid.uuid4())
            run.last_updated = time.time()

    def _hook(self, run: Run, event: str, function: str | None) -> None:
        """A lifecycle event with its hook: invoke it asynchronously, wait for its report."""
        run.event(event, "InProgress")
        if not function:
            # A guess: an event without a hook is reported Succeeded (not Skipped).
            run.event(event, "Succeeded")
            return
        execution = HookExecution(run.id, event)
        with LOCK:
            STATE.hook_executions[execution.id] = execution
        run.hook_execution = execution
        if not function_exists(run.region, function):
            run.event(event, "Failed", {"errorCode": "ScriptMissing", "message": f"The hook function {function} does not exist.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "HOOK_EXECUTION_FAILURE", f"The {event} hook function {function} does not exist.")
        payload = json.dumps({"DeploymentId": run.id, "LifecycleEventHookExecutionId": execution.id}).encode()
        invoke_async(run.region, function, None, payload, f"codedeploy {event} {run.id}")
        reported = self._wait(run, SETTINGS.scaled(SETTINGS.hook_timeout), done=lambda: execution.status != "Pending")
        if not reported:
            run.event(event, "Failed", {"errorCode": "ScriptTimedOut", "message": "The lifecycle event hook timed out: no PutLifecycleEventHookExecutionStatus within one hour.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "TIMEOUT", f"The {event} lifecycle event hook {function} did not report a status within the hook timeout.")
        if execution.status != "Succeeded":
            run.event(event, "Failed", {"errorCode": "ScriptFailed", "message": "The hook reported Failed.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "HOOK_EXECUTION_FAILURE", f"The {event} lifecycle event hook {function} reported Failed.")
        run.event(event, "Succeeded")

    def _allow_traffic(self, run: Run, info: dict) -> None:
        run.event("AllowTraffic", "InProgress")
        current, target = info["currentVersion"], info["targetVersion"]
        if run.rollback_of is not None:
            # A guess: a rollback deployment restores all at once, whatever the configuration.
            routing = {"type": "AllAtOnce"}
        else:
            routing = routing_of(run.deployment.deployment_config_name, "Lambda")
        if routing["type"] == "TimeBasedCanary":
            canary = routing["timeBasedCanary"]
            self._set_alias(run, info, current, {target: round(canary["canaryPercentage"] / 100.0, 4)})
            self._wait(run, SETTINGS.scaled(canary["canaryInterval"] * 60))
        elif routing["type"] == "TimeBasedLinear":
            linear = routing["timeBasedLinear"]
            shifted = linear["linearPercentage"]
            while shifted < 100:
                self._set_alias(run, info, current, {target: round(shifted / 100.0, 4)})
                self._wait(run, SETTINGS.scaled(linear["linearInterval"] * 60))
                shifted += linear["linearPercentage"]
        self._set_alias(run, info, target, {})
        run.event("AllowTraffic", "Succeeded")

    def _validate(self, run: Run, info: dict) -> None:
        backend = lambda_backend(run.region)
        try:
            alias = backend.get_alias(info["functionAlias"], info["functionName"])
        except Exception:
            raise Interrupted("failure", "INVALID_LAMBDA_FUNCTION", f"The alias {info['functionAlias']} of function {info['functionName']} does not exist.")
        for version in (info["currentVersion"], info["targetVersion"]):
            try:
                backend._lambdas.get_function_by_name_or_arn_with_qualifier(info["functionName"], version)
            except Exception:
                raise Interrupted("failure", "INVALID_LAMBDA_FUNCTION", f"Version {version} of function {info['functionName']} does not exist.")
        if run.rollback_of is None and str(alias.function_version) != info["currentVersion"]:
            raise Interrupted(
                "failure",
                "INVALID_LAMBDA_CONFIGURATION",
                f"The deployment failed because the AWS Lambda function's alias version ({alias.function_version}) does not match the current version in AppSpec ({info['currentVersion']}).",
            )

    def _run(self, run: Run) -> None:
        d = run.deployment
        try:
            with LOCK:
                if d.status == "Created":
                    d.status = "InProgress"
                    d.start_time = now_naive()
                elif d.status != "InProgress":
                    return
                d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, "InProgress": 1}
                run.target_status = "InProgress"
            spec = appspec_of(d.revision)
            info = lambda_function_info(run.region, d)
            hooks: dict[str, str] = {}
            for entry in spec.get("Hooks") or []:
                if isinstance(entry, dict):
                    hooks.update({str(k): str(v) for k, v in entry.items()})
            run.event("Start", "InProgress")
            self._check(run)
            self._validate(run, info)
            run.event("Start", "Succeeded")
            self._hook(run, "BeforeAllowTraffic", hooks.get("BeforeAllowTraffic"))
            self._allow_traffic(run, info)
            self._hook(run, "AfterAllowTraffic", hooks.get("AfterAllowTraffic"))
            run.event("End", "InProgress")
            with LOCK:
                self._check(run, monitor_alarms=False)
                run.event("End", "Succeeded")
                self._finish(run, "Succeeded", None)
        except Interrupted as stop:
            self._interrupted(run, stop)
        except AwsError as err:
            self._interrupted(run, Interrupted("failure", "INVALID_REVISION", err.message))
        except Exception as exc:  # an engine bug must not leave a deployment InProgress forever
            print(f"engine: deployment {d.deployment_id} failed internally: {exc!r}", file=sys.stderr)
            self._interrupted(run, Interrupted("failure", "INTERNAL_ERROR", f"emulator engine error: {exc!r}"))
        finally:
            notify()

    def _finish(self, run: Run, status: str, error: dict | None) -> None:
        d = run.deployment
        with LOCK:
            d.status = status
            d.complete_time = now_naive()
            if error:
                d.shiftguard_error = error
            run.target_status = {"Succeeded": "Succeeded", "Failed": "Failed", "Stopped": "Failed"}[status]
            d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, run.target_status: 1}
            run.finished = True
            run.last_updated = time.time()
            for name, entry in run.events.items():
                if entry["status"] in ("Pending", "InProgress"):
                    # A guess: events that never ran are Skipped, the one that was running Failed.
                    entry["status"] = "Failed" if entry["status"] == "InProgress" else "Skipped"
            if run.rollback_of is not None:
                word = {"Succeeded": "succeeded.", "Failed": f"failed: {(error or {}).get('message', '')}", "Stopped": "was stopped."}[status]
                note_rollback(run.rollback_of, run.region, f"Rollback deployment {d.deployment_id} {word}")

    def _interrupted(self, run: Run, stop: Interrupted) -> None:
        d = run.deployment
        with LOCK:
            if stop.kind == "gone" or d.status not in ("Created", "InProgress"):
                # Someone else (the control plane, start_rollback) finished it.
                run.finished = True
                if run.target_status in ("Pending", "InProgress"):
                    run.target_status = target_status(d.status)
                return
            status = "Failed" if stop.kind == "failure" else "Stopped"
            error = {"code": stop.code, "message": stop.message}
            rollback = False
            if run.rollback_of is None:
                if stop.kind == "stop":
                    rollback = bool(run.stop_request and run.stop_request.get("rollback"))
                elif stop.kind == "alarm":
                    rollback = self.rolls_back_on(d, "DEPLOYMENT_STOP_ON_ALARM")
                else:
                    rollback = self.rolls_back_on(d, "DEPLOYMENT_FAILURE")
            if rollback:
                d.shiftguard_error = error
                run.finished = True
                run.target_status = "Failed"
                for entry in run.events.values():
                    if entry["status"] in ("Pending", "InProgress"):
                        entry["status"] = "Failed" if entry["status"] == "InProgress" else "Skipped"
                try:
                    start_rollback(run.region, d, status, True, 0.0)
                except AwsError as err:
                    print(f"engine: rollback of {d.deployment_id} failed: {err.message}", file=sys.stderr)
                    self._finish(run, status, error)
                d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, "Failed": 1}
            else:
                self._finish(run, status, error)


ENGINE = Engine()


def start_rollback_run(region: str, original: Any, rollback: Any) -> bool:
    """Called by `start_rollback`: when the engine runs `original` (or is on), the engine runs
    the rollback deployment too (its own hooks, the alias restored). Returns whether it did."""
    if not (ENGINE.manages(original) or SETTINGS.enabled):
        return False
    rekey(codedeploy_backend(region), rollback)
    with LOCK:
        original.rollback_info = {**rollback_info_of(original), "rollbackDeploymentId": rollback.deployment_id, "rollbackMessage": f"Rollback deployment {rollback.deployment_id} is in progress."}
    ENGINE.start(region, rollback, rollback_of=original.deployment_id)
    return True


def target_view(deployment_id: str) -> dict | None:
    run = ENGINE.run_of(deployment_id)
    if run is None:
        return None
    return {"status": run.target_status, "lifecycleEvents": run.lifecycle_events(), "lastUpdatedAt": run.last_updated}


def start_rollback(region: str, original: Any, original_status: str, restore: bool, restore_delay: float) -> Any:
    """What CodeDeploy does when it rolls `original` back (StopDeployment with auto-rollback, an
    alarm, a failed hook): `original` ends with `original_status`, and a new deployment, created by
    `codeDeployRollback`, puts the alias back on the original's CurrentVersion with no weights
    after `restore_delay` seconds, then succeeds. `restore=False`: it stays InProgress and never
    touches the alias (CodeDeploy slow or stuck). Returns the rollback deployment."""
    backend = codedeploy_backend(region)
    with LOCK:
        if original.status not in IN_FLIGHT:
            raise AwsError(400, "DeploymentAlreadyCompletedException", f"The deployment {original.deployment_id} is already completed.")
        # Everything that can fail is done before anything changes.
        revision = rollback_revision(original)
        rollback_id = backend.create_deployment(
            application_name=original.application_name,
            deployment_group_name=original.deployment_group_name,
            revision=revision,
            # A guess: the rollback is assumed to use the original's deployment configuration.
            deployment_config_name=original.deployment_config_name,
        )
        rollback = backend.deployments[rollback_id]
        rollback.creator = "codeDeployRollback"
        rollback.status = "InProgress"
        rollback.start_time = rollback.create_time
        rollback.rollback_info = {"rollbackTriggeringDeploymentId": original.deployment_id}
        original.status = original_status
        original.complete_time = utc_now_naive()
        # The message text is ours; AWS documents only what it describes.
        original.rollback_info = {
            **rollback_info_of(original),
            "rollbackDeploymentId": rollback_id,
            "rollbackMessage": f"Rollback deployment {rollback_id} is in progress.",
        }
        # The engine runs the rollback deployment (its own hooks, then the alias restored) when it
        # runs the original or is on; `restore`/`restore_delay` are then not used.
        if start_rollback_run(region, original, rollback):
            return rollback
    if restore:
        if restore_delay > 0:
            timer = threading.Timer(restore_delay, finish_rollback, args=(region, rollback))
            timer.daemon = True
            timer.start()
        else:
            finish_rollback(region, rollback)
    return rollback


def finish_rollback(region: str, rollback: Any) -> None:
    """The rollback deployment's one step: the alias back on the version it restores, no weights."""
    with LOCK:
        if rollback.status != "InProgress":
            return  # stopped (or set by a test) meanwhile: CodeDeploy would not touch the alias
        triggering_id = rollback_info_of(rollback).get("rollbackTriggeringDeploymentId")
        try:
            info = lambda_function_info(region, rollback)
            alias = lambda_backend(region).get_alias(info["functionAlias"], info["functionName"])
        except Exception as exc:  # the function or alias went away: the rollback fails
            rollback.status = "Failed"
            rollback.complete_time = utc_now_naive()
            note_rollback(triggering_id, region, f"Rollback deployment {rollback.deployment_id} failed: {exc}")
            return
        alias.update(None, info["targetVersion"], {})
        alias.revision_id = str(uuid.uuid4())
        rollback.status = "Succeeded"
        rollback.complete_time = utc_now_naive()
        note_rollback(triggering_id, region, f"Rollback deployment {rollback.deployment_id} succeeded.")


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/engine":
        if method == "POST":
            SETTINGS.update(body or {})
            if SETTINGS.enabled:
                ENGINE.ensure_ticker()
        return 200, SETTINGS.to_json()
    return None
