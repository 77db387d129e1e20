"""Patches of moto's models, applied once before the emulator serves (`install`, in this order):

* Lambda without Docker (Invoke echoes the payload, or a behaviour answers: `lambda_invocations`);
* CloudWatch percentile statistics (`_percentile_statistics`) and GetMetricData per period
  (`cloudwatch_metrics.install`);
* published Lambda versions that keep their own code, hash and description, image functions'
  digests (`_lambda_versions_keep_their_code`);
* CodeDeploy's `deploymentInfo` with `rollbackInfo`, `createTime` and `errorInformation`
  (`_deployment_info_with_rollbacks`);
* AWS-shaped VPC Lattice ids (`_aws_shaped_lattice_ids`);
* API Gateway stage canaries (`apigateway.install`), SNS delivering to Lambda (`sns.install`),
  CloudWatch alarms that notify and keep their state (`alarms.install`).

Each is idempotent and changes only what its docstring says."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from typing import Any

import alarms
import apigateway
import cloudwatch_metrics
import sns
from codedeploy_model import ROLLBACK_INFO_MEMBERS, rollback_info_of
from state import DEFAULT_ACCOUNT


def _percentile_statistics() -> None:
    """CloudWatch answers percentile statistics (`p99`, `p95.5`); moto returns nothing for them."""
    from moto.cloudwatch import models

    original = models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = re.match(r"^p(\d+(\.\d+)?)$", stat)
        if not match:
            return original(self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = max(1, -(-float(match.group(1)) * len(values) // 100))
        return values[int(min(rank, len(values))) - 1]

    models.Statistics.get_statistics_for_type = get_statistics_for_type


def image_repository(uri: str) -> str:
    """An image URI without its tag or digest (`123.dkr.ecr.r.amazonaws.com/repo:v1` -> `…/repo`)."""
    base = uri.split("@", 1)[0]
    head, _, last = base.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_digest(region: str, uri: str) -> str:
    """The digest (64 hex) an image URI resolves to: the one it names (`…@sha256:<hex>`), else the
    image moto's ECR holds under that repository and tag, else one made up from the URI (a guess:
    the stand-in for a registry this emulator does not have)."""
    if "@" in uri:
        digest = uri.split("@", 1)[1].lower()
        if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return digest[len("sha256:") :]
    # `<registry>/<repository path>[:tag]`: the repository may have slashes (`team/svc`).
    path = uri.split("@", 1)[0].split("/", 1)[-1]
    head, _, last = path.rpartition("/")
    name, _, tag = last.partition(":")
    repo = f"{head}/{name}" if head else name
    try:
        from moto.ecr.models import ecr_backends

        found = ecr_backends[DEFAULT_ACCOUNT][region].batch_get_image(repository_name=repo, image_ids=[{"imageTag": tag or "latest"}])["images"]
        if found:
            return found[0].image_id["imageDigest"].split(":", 1)[-1]
    except Exception:
        pass
    return hashlib.sha256(uri.encode()).hexdigest()


def _lambda_versions_keep_their_code() -> None:
    """Published versions are snapshots (Lambda developer guide, *Lambda function versions*: "a
    version includes ... the function code and all associated dependencies ... the function
    settings"). moto 5.2.5 copies `$LATEST` shallowly, so a version shared the `Code` dict with
    `$LATEST`: after UpdateFunctionCode an older version's GetFunction showed the new `ImageUri`
    (and S3 location). Also fixed here:

    * PublishVersion after UpdateFunctionCode with the same bytes and no configuration change
      returns the latest version ("Lambda doesn't publish a version if the function's
      configuration and code haven't changed since the last version"); moto published another;
    * image functions: `CodeSha256` is the image digest and `Code.ResolvedImageUri` is
      `<repository>@sha256:<digest>`; moto hashed the URI text and built `ResolvedImageUri` by
      cutting at the first `:` (broken for a URI that names a digest)."""
    from moto.awslambda import models

    storage = models.LambdaStorage
    if getattr(storage.publish_version, "shiftguard", False):
        return
    original_publish = storage.publish_version
    original_update_configuration = models.LambdaFunction.update_configuration
    original_set_code = models.LambdaFunction._set_function_code
    original_get_code = models.LambdaFunction.get_code

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        try:
            name = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn).function_name
            group = self._functions.get(name) or {}
        except Exception:
            return original_publish(self, name_or_arn, description)
        latest, versions = group.get("latest"), group.get("versions") or []
        if latest is not None and versions and latest.code_or_config_updated:
            unchanged_code = latest.code_sha_256 == versions[-1].code_sha_256 and latest.code.get("ImageUri") == versions[-1].code.get("ImageUri")
            if unchanged_code and not getattr(latest, "shiftguard_config_changed", False):
                latest.code_or_config_updated = False
        before = len(versions)
        published = original_publish(self, name_or_arn, description)
        if published is not None and len(group.get("versions") or []) > before:
            published.code = copy.deepcopy(published.code)
            if latest is not None:
                latest.shiftguard_config_changed = False
        return published

    def update_configuration(self: Any, config_updates: dict) -> Any:
        self.shiftguard_config_changed = True
        return original_update_configuration(self, config_updates)

    def set_function_code(self: Any, updated_spec: dict) -> None:
        original_set_code(self, updated_spec)
        if "ImageUri" in updated_spec and not (updated_spec is not self.code and updated_spec.get("DryRun")):
            self.code_sha_256 = image_digest(self.region, updated_spec["ImageUri"])

    def get_code(self: Any) -> dict:
        out = original_get_code(self)
        uri = (self.code or {}).get("ImageUri")
        if uri and isinstance(out.get("Code"), dict):
            out["Code"]["ResolvedImageUri"] = f"{image_repository(uri)}@sha256:{self.code_sha_256}"
        return out

    publish_version.shiftguard = True  # type: ignore[attr-defined]
    storage.publish_version = publish_version
    models.LambdaFunction.update_configuration = update_configuration
    models.LambdaFunction._set_function_code = set_function_code
    models.LambdaFunction.get_code = get_code


def _aws_shaped_lattice_ids() -> None:
    """moto makes VPC Lattice ids from a UUID's first 17 characters (dashes included); AWS's are
    the prefix and 17 lower-case letters or digits (`svc-[0-9a-z]{17}` in the model)."""
    from moto.vpclattice import models

    class _Uuid:
        @staticmethod
        def uuid4() -> str:
            return uuid.uuid4().hex

    models.uuid = _Uuid


def _deployment_info_with_rollbacks() -> None:
    """moto answers `"rollbackInfo": {}` for every deployment. GetDeployment and
    BatchGetDeployments (moto's only operations that return a `deploymentInfo`) report the
    deployment's own `rollbackInfo` and `createTime` instead."""
    from moto.codedeploy import responses

    original = responses._deployment_info
    if getattr(original, "shiftguard", False):
        return

    def deployment_info(deployment: Any) -> dict:
        info = original(deployment)
        rollback = {k: v for k, v in rollback_info_of(deployment).items() if k in ROLLBACK_INFO_MEMBERS and v}
        if rollback:
            info["rollbackInfo"] = rollback
        else:
            # AWS's JSON protocols leave out members that are not set; whether CodeDeploy sends
            # an empty `rollbackInfo` for a deployment never involved in a rollback is not
            # documented. Left out here; callers must accept both.
            info.pop("rollbackInfo", None)
        # moto already reports `create_time`; a test may have set it (control plane `createTime`).
        info["createTime"] = deployment.create_time
        error = getattr(deployment, "shiftguard_error", None)
        if error:
            # Why the engine failed or stopped it: ErrorInformation {code (ErrorCode), message}.
            info["errorInformation"] = dict(error)
        return info

    deployment_info.shiftguard = True  # type: ignore[attr-defined]
    # `get_deployment` and `batch_get_deployments` look the function up in the module when called.
    responses._deployment_info = deployment_info


def install() -> None:
    # Lambda without Docker: Invoke echoes the payload (or a canned response) instead of running code.
    from moto.core.models import default_user_config

    default_user_config.setdefault("lambda", {})["use_docker"] = False
    _percentile_statistics()
    cloudwatch_metrics.install()
    _lambda_versions_keep_their_code()
    _deployment_info_with_rollbacks()
    _aws_shaped_lattice_ids()
    apigateway.install()
    # (`alarms.install` patched SNS, then alarms: the same order.)
    sns.install()
    alarms.install()
