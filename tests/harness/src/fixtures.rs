//! Real resources created through the AWS API in the emulator, shared by every crate's tests.

use aws_sdk_codedeploy::types::{
    AppSpecContent, ComputePlatform, DeploymentOption, DeploymentStyle, DeploymentType,
    RevisionLocation, RevisionLocationType,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionCode, Runtime};
use serde_json::json;

use crate::{distinct_zip, World, LAMBDA_ROLE_ARN};

/// A function with versions 1..=n published.
pub async fn function(lambda: &aws_sdk_lambda::Client, name: &str, versions: usize) {
    lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .role(LAMBDA_ROLE_ARN)
        .handler("bootstrap")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(distinct_zip("1")))
                .build(),
        )
        .publish(true)
        .send()
        .await
        .expect("CreateFunction");
    for v in 2..=versions {
        lambda
            .update_function_code()
            .function_name(name)
            .zip_file(Blob::new(distinct_zip(&v.to_string())))
            .send()
            .await
            .expect("UpdateFunctionCode");
        let out = lambda
            .publish_version()
            .function_name(name)
            .send()
            .await
            .expect("PublishVersion");
        assert_eq!(out.version.as_deref(), Some(v.to_string().as_str()));
    }
}

pub fn routing(weights: &[(&str, f64)]) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(
            weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
        ))
        .build()
}

pub async fn alias(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
    version: &str,
    weights: &[(&str, f64)],
) {
    lambda
        .create_alias()
        .function_name(function)
        .name(alias)
        .function_version(version)
        .routing_config(routing(weights))
        .send()
        .await
        .expect("CreateAlias");
}

/// (primary version, additional weights sorted by version) as the API reports them now.
pub async fn alias_state(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
) -> (String, Vec<(String, f64)>) {
    let out = lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
        .expect("GetAlias");
    let mut weights: Vec<(String, f64)> = out
        .routing_config
        .and_then(|r| r.additional_version_weights)
        .unwrap_or_default()
        .into_iter()
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    (out.function_version.unwrap_or_default(), weights)
}

/// A CodeDeploy Lambda application `app` with the deployment group `group` (canary 10% for 5
/// minutes); either is created only when it does not exist yet.
pub async fn codedeploy_group(codedeploy: &aws_sdk_codedeploy::Client, app: &str, group: &str) {
    if codedeploy
        .get_application()
        .application_name(app)
        .send()
        .await
        .is_err()
    {
        codedeploy
            .create_application()
            .application_name(app)
            .compute_platform(ComputePlatform::Lambda)
            .send()
            .await
            .expect("CreateApplication");
    }
    if codedeploy
        .get_deployment_group()
        .application_name(app)
        .deployment_group_name(group)
        .send()
        .await
        .is_ok()
    {
        return;
    }
    codedeploy
        .create_deployment_group()
        .application_name(app)
        .deployment_group_name(group)
        .service_role_arn(LAMBDA_ROLE_ARN)
        .deployment_config_name("CodeDeployDefault.LambdaCanary10Percent5Minutes")
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .send()
        .await
        .expect("CreateDeploymentGroup");
}

/// A CodeDeploy Lambda application `app`, deployment group `app-group`, and a deployment shifting
/// `function:alias` from `current` to `target`, with the AppSpec as `AppSpecContent`. Returns the
/// deployment id.
pub async fn codedeploy_deployment(
    codedeploy: &aws_sdk_codedeploy::Client,
    app: &str,
    function: &str,
    alias: &str,
    current: &str,
    target: &str,
) -> String {
    codedeploy_group(codedeploy, app, &format!("{app}-group")).await;
    let appspec = json!({
        "version": 0.0,
        "Resources": [{ function: { "Type": "AWS::Lambda::Function", "Properties": {
            "Name": function, "Alias": alias, "CurrentVersion": current, "TargetVersion": target } } }]
    });
    create_lambda_deployment(codedeploy, app, &format!("{app}-group"), &appspec).await
}

/// `CreateDeployment` of an AppSpec (as `AppSpecContent`) in an existing Lambda deployment group.
/// Returns the deployment id.
pub async fn create_lambda_deployment(
    codedeploy: &aws_sdk_codedeploy::Client,
    app: &str,
    group: &str,
    appspec: &serde_json::Value,
) -> String {
    create_described_lambda_deployment(codedeploy, app, group, appspec, None).await
}

/// [`create_lambda_deployment`] with the deployment's `description` (where people write, e.g.,
/// the `[shiftguard skip]` bypass).
pub async fn create_described_lambda_deployment(
    codedeploy: &aws_sdk_codedeploy::Client,
    app: &str,
    group: &str,
    appspec: &serde_json::Value,
    description: Option<&str>,
) -> String {
    codedeploy
        .create_deployment()
        .application_name(app)
        .deployment_group_name(group)
        .set_description(description.map(str::to_string))
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(
                    AppSpecContent::builder()
                        .content(appspec.to_string())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateDeployment")
        .deployment_id
        .expect("deployment id")
}

/// A CloudWatch metric alarm (Sum over one minute, one period, ≥ 1) on `namespace`/`metric` with
/// `dimensions`, notifying `actions`.
pub async fn metric_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    name: &str,
    (namespace, metric): (&str, &str),
    dimensions: &[(&str, &str)],
    actions: &[&str],
) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .namespace(namespace)
        .metric_name(metric)
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                .collect(),
        ))
        .set_alarm_actions(Some(actions.iter().map(|a| a.to_string()).collect()))
        .send()
        .await
        .expect("PutMetricAlarm");
}

/// An SNS topic `name` that delivers to the Lambda function `endpoint` (an ARN): the topic's ARN.
pub async fn topic_to_lambda<C>(w: &World<C>, name: &str, endpoint: &str) -> String {
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("a topic ARN");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint(endpoint)
        .send()
        .await
        .expect("Subscribe");
    topic
}

/// Whether Lambda answers that `function:alias` does not exist (its typed
/// ResourceNotFoundException; any other failure panics). Read with the SDK's own call, apart from
/// the functions' `shiftguard_common::lambda` readers that the tests check.
pub async fn alias_missing(lambda: &aws_sdk_lambda::Client, function: &str, alias: &str) -> bool {
    match lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
    {
        Ok(_) => false,
        Err(e) => {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            assert!(missing, "GetAlias {function}:{alias}: {e:?}");
            true
        }
    }
}
