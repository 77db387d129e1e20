"""SNS delivering to Lambda: a `lambda` subscription gets the SNS Lambda event envelope,
asynchronously (Lambda's async retries apply), through `lambda_invocations` (a bound Runtime API
process, a canned behaviour, or moto's echo). Active while the engine is on
(`engine_settings.SETTINGS.enabled`); off, moto delivers as it always did. CloudWatch alarm
notifications reach SNS through moto's Publish (`alarms.run_actions`).

Test control: `GET|DELETE /_shiftguard/sns/deliveries`."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone
from typing import Any

from engine_settings import SETTINGS
from lambda_invocations import invoke_async
from state import LOCK, records_view


# Every SNS delivery to a Lambda subscription: {"topicArn", "subscriptionArn", "function", "event"}.
DELIVERIES: list[dict] = []


def sns_lambda_event(subscription: Any, message: str, message_id: str, subject: str | None, message_attributes: dict | None) -> dict:
    """The event SNS gives a subscribed function (Lambda developer guide, *Using Lambda with
    Amazon SNS*: the example event)."""
    topic_arn = subscription.topic.arn
    region = topic_arn.split(":")[3]
    attributes = {}
    for key, value in (message_attributes or {}).items():
        # In the Lambda event each attribute is {"Type", "Value"} (moto keeps the same shape).
        attributes[key] = {"Type": value.get("Type") or value.get("DataType"), "Value": value.get("Value") or value.get("StringValue") or value.get("BinaryValue")}
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription.arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    # Unsure: with no subject, AWS's examples show `null` here (the key present).
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "SignatureVersion": "1",
                    # Not a real signature: nothing local can verify one.
                    "Signature": base64.b64encode(f"shiftguard-emulator:{message_id}".encode()).decode(),
                    "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
                    "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


def _patch_sns() -> None:
    from moto.sns import models

    original = models.Subscription.publish
    if getattr(original, "shiftguard", False):
        return

    def publish(self: Any, message: str, message_id: str, subject: str | None = None, message_attributes: dict | None = None, *args: Any, **kwargs: Any) -> None:
        if self.protocol != "lambda" or not SETTINGS.enabled:
            return original(self, message, message_id, subject, message_attributes, *args, **kwargs)
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return None
        event = sns_lambda_event(self, message, message_id, subject, message_attributes)
        region = self.endpoint.split(":")[3]
        with LOCK:
            DELIVERIES.append({"topicArn": self.topic.arn, "subscriptionArn": self.arn, "function": self.endpoint, "time": time.time(), "event": event})
        invoke_async(region, self.endpoint, None, json.dumps(event).encode(), f"sns {self.topic.arn}")
        return None

    publish.shiftguard = True  # type: ignore[attr-defined]
    models.Subscription.publish = publish


def install() -> None:
    _patch_sns()


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/sns/deliveries":
        return records_view(method, query, DELIVERIES, "deliveries")
    return None
