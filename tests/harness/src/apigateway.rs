//! API Gateway fixtures: a REST API with stage `prod` and, optionally, a canary deployment, and a
//! reader of the stage's deployments.

use aws_sdk_apigateway::types::DeploymentCanarySettings;

use crate::World;

pub struct Api {
    pub id: String,
    pub production: String,
    pub canary: String,
}

/// The id the rehearsal stack (`cdk/lib/rehearsal.ts`) names: a world's first API gets it.
pub const REHEARSAL_API_ID: &str = "chk0api001";

/// A REST API with stage `prod` on deployment 1 and (with `percent`) a canary deployment 2. The
/// world's first API has the rehearsal stack's id (moto's `_custom_id_` tag), so that a binary
/// with the stack's role may act on it.
pub async fn api<C>(w: &World<C>, percent: Option<f64>) -> Api {
    let gw = &aws_sdk_apigateway::Client::new(&w.sdk);
    let taken = gw
        .get_rest_apis()
        .send()
        .await
        .expect("GetRestApis")
        .items
        .unwrap_or_default()
        .iter()
        .any(|a| a.id.as_deref() == Some(REHEARSAL_API_ID));
    let mut create = gw.create_rest_api().name("checkout-api");
    if !taken {
        create = create.tags("_custom_id_", REHEARSAL_API_ID);
    }
    let id = create.send().await.expect("CreateRestApi").id.unwrap();
    // AWS refuses to deploy an API without methods: GET / with a mock integration.
    let root = gw
        .get_resources()
        .rest_api_id(&id)
        .send()
        .await
        .expect("GetResources")
        .items
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.path.as_deref() == Some("/"))
        .and_then(|r| r.id)
        .expect("the root resource");
    gw.put_method()
        .rest_api_id(&id)
        .resource_id(&root)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .expect("PutMethod");
    gw.put_integration()
        .rest_api_id(&id)
        .resource_id(&root)
        .http_method("GET")
        .r#type(aws_sdk_apigateway::types::IntegrationType::Mock)
        .send()
        .await
        .expect("PutIntegration");
    let production = gw
        .create_deployment()
        .rest_api_id(&id)
        .stage_name("prod")
        .send()
        .await
        .expect("CreateDeployment")
        .id
        .unwrap();
    let mut canary = String::new();
    if let Some(percent) = percent {
        canary = gw
            .create_deployment()
            .rest_api_id(&id)
            .stage_name("prod")
            .canary_settings(
                DeploymentCanarySettings::builder()
                    .percent_traffic(percent)
                    .build(),
            )
            .send()
            .await
            .expect("CreateDeployment with a canary")
            .id
            .unwrap();
    }
    Api {
        id,
        production,
        canary,
    }
}

/// (stage deployment, canary deployment, canary percent).
pub async fn stage_state<C>(
    w: &World<C>,
    api: &Api,
) -> (Option<String>, Option<String>, Option<f64>) {
    let s = aws_sdk_apigateway::Client::new(&w.sdk)
        .get_stage()
        .rest_api_id(&api.id)
        .stage_name("prod")
        .send()
        .await
        .expect("GetStage");
    let canary = s.canary_settings;
    (
        s.deployment_id,
        canary.as_ref().and_then(|c| c.deployment_id.clone()),
        canary.map(|c| c.percent_traffic),
    )
}
