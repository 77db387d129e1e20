//! The `pre-traffic` hook (CodeDeploy BeforeAllowTraffic).

fn main() -> Result<(), lambda_runtime::Error> {
    hooks::main(hooks::Phase::PreTraffic)
}
