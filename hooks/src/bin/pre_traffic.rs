//! The `pre-traffic` hook (CodeDeploy BeforeAllowTraffic).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    hooks::serve(hooks::Phase::PreTraffic).await
}
