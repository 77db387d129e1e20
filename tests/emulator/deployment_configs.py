"""CodeDeploy deployment configurations of the Lambda compute platform: the predefined ones (and the
EC2/on-premises ones CodeDeploy also lists), custom `TimeBasedCanary`/`TimeBasedLinear` ones
(Create/Get/List/DeleteDeploymentConfig), and the traffic routing a deployment follows."""

from __future__ import annotations

import time
import uuid
from typing import Any

from errors import AwsError
from state import LOCK, codedeploy_backend


def _canary(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes}}


def _linear(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes}}


# The predefined Lambda configurations (CodeDeploy user guide, *Deployment configurations on an
# AWS Lambda compute platform*).
PREDEFINED: dict[str, dict] = {
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": _canary(10, 5),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": _canary(10, 10),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": _canary(10, 15),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": _canary(10, 30),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": _linear(10, 1),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": _linear(10, 2),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": _linear(10, 3),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": _linear(10, 10),
    "CodeDeployDefault.LambdaAllAtOnce": {"type": "AllAtOnce"},
}


# The EC2/on-premises ones CodeDeploy also lists (GetDeploymentConfig answers them).
PREDEFINED_SERVER = {
    "CodeDeployDefault.OneAtATime": {"type": "HOST_COUNT", "value": 1},
    "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
    "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
}


# name -> {"deploymentConfigId", "deploymentConfigName", "computePlatform", "trafficRoutingConfig",
#          "minimumHealthyHosts", "createTime"}
CUSTOM_CONFIGS: dict[str, dict] = {}


_BOOT = time.time()


def config_info(name: str) -> dict | None:
    if name in PREDEFINED:
        return {
            "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "deploymentConfigName": name,
            "createTime": _BOOT,
            "computePlatform": "Lambda",
            "trafficRoutingConfig": PREDEFINED[name],
        }
    if name in PREDEFINED_SERVER:
        return {
            "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "deploymentConfigName": name,
            "minimumHealthyHosts": PREDEFINED_SERVER[name],
            "createTime": _BOOT,
            "computePlatform": "Server",
        }
    with LOCK:
        found = CUSTOM_CONFIGS.get(name)
        return dict(found) if found else None


def routing_of(config_name: str | None, compute_platform: str = "Lambda") -> dict:
    """The traffic routing of a deployment's configuration. moto defaults a group without a
    configuration to `CodeDeployDefault.OneAtATime` (EC2's default); on the Lambda platform
    CodeDeploy's default is `CodeDeployDefault.LambdaAllAtOnce`."""
    name = str(config_name) if config_name else "CodeDeployDefault.LambdaAllAtOnce"
    if name in PREDEFINED_SERVER and compute_platform == "Lambda":
        name = "CodeDeployDefault.LambdaAllAtOnce"
    info = config_info(name)
    if info is None or "trafficRoutingConfig" not in info:
        raise AwsError(400, "DeploymentConfigDoesNotExistException", f"The deployment configuration {name} does not exist with the user or AWS account.")
    return info["trafficRoutingConfig"]


def _validate_routing(routing: Any) -> dict:
    def bad(message: str) -> AwsError:
        return AwsError(400, "InvalidTrafficRoutingConfigurationException", message)

    if not isinstance(routing, dict) or routing.get("type") not in ("TimeBasedCanary", "TimeBasedLinear", "AllAtOnce"):
        raise bad("The trafficRoutingConfig type must be TimeBasedCanary, TimeBasedLinear or AllAtOnce.")
    kind = routing["type"]
    if kind == "AllAtOnce":
        return {"type": "AllAtOnce"}
    member, pct, interval = {
        "TimeBasedCanary": ("timeBasedCanary", "canaryPercentage", "canaryInterval"),
        "TimeBasedLinear": ("timeBasedLinear", "linearPercentage", "linearInterval"),
    }[kind]
    body = routing.get(member)
    if not isinstance(body, dict):
        raise bad(f"A {kind} configuration needs {member}.")
    p, i = body.get(pct), body.get(interval)
    # The API reference: percentages of traffic, intervals in minutes. The console allows 1-99 %
    # and 1-2880 minutes; those bounds are what this emulator enforces (a guess for the API).
    if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 99:
        raise bad(f"{member}.{pct} must be an integer from 1 to 99.")
    if not isinstance(i, int) or isinstance(i, bool) or not 1 <= i <= 2880:
        raise bad(f"{member}.{interval} must be an integer number of minutes from 1 to 2880.")
    return {"type": kind, member: {pct: p, interval: i}}


def cd_create_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    if not isinstance(name, str) or len(name) > 100:
        raise AwsError(400, "InvalidDeploymentConfigNameException", "The deployment configuration name was specified in an invalid format.")
    platform = req.get("computePlatform", "Server")
    if platform not in ("Server", "Lambda", "ECS"):
        raise AwsError(400, "InvalidComputePlatformException", "The computePlatform is invalid. The computePlatform should be Lambda, Server, or ECS.")
    if platform != "Lambda":
        raise AwsError(400, "InvalidComputePlatformException", "This emulator serves deployment configurations for the Lambda compute platform only.")
    routing = _validate_routing(req.get("trafficRoutingConfig"))
    with LOCK:
        if name in CUSTOM_CONFIGS or name in PREDEFINED or name in PREDEFINED_SERVER:
            raise AwsError(400, "DeploymentConfigAlreadyExistsException", f"A deployment configuration with the name {name} already exists with the user or AWS account.")
        config_id = str(uuid.uuid4())
        CUSTOM_CONFIGS[name] = {
            "deploymentConfigId": config_id,
            "deploymentConfigName": name,
            "createTime": time.time(),
            "computePlatform": platform,
            "trafficRoutingConfig": routing,
        }
    return {"deploymentConfigId": config_id}


def cd_get_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    info = config_info(name)
    if info is None:
        raise AwsError(400, "DeploymentConfigDoesNotExistException", f"The deployment configuration {name} does not exist with the user or AWS account.")
    return {"deploymentConfigInfo": info}


def cd_list_deployment_configs(region: str, req: dict) -> dict:
    with LOCK:
        names = list(PREDEFINED_SERVER) + list(PREDEFINED) + sorted(CUSTOM_CONFIGS)
    return {"deploymentConfigsList": names}


def cd_delete_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    if name in PREDEFINED or name in PREDEFINED_SERVER:
        raise AwsError(400, "InvalidOperationException", "A predefined deployment configuration cannot be deleted.")
    backend = codedeploy_backend(region)
    with LOCK:
        groups = [g for apps in backend.deployment_groups.values() for g in apps.values()]
        if any(str(g.deployment_config_name) == name for g in groups):
            raise AwsError(400, "DeploymentConfigInUseException", "The deployment configuration is still in use.")
        # AWS answers success for a configuration that does not exist (nothing documented otherwise).
        CUSTOM_CONFIGS.pop(name, None)
    return {}
