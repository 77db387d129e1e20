//! The `post-traffic` hook (CodeDeploy AfterAllowTraffic).

fn main() -> Result<(), lambda_runtime::Error> {
    hooks::main(hooks::Phase::PostTraffic)
}
