//! The `post-traffic` hook (CodeDeploy AfterAllowTraffic).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    hooks::serve(hooks::Phase::PostTraffic).await
}
