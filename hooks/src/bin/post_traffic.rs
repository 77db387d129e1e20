//! The `post-traffic` hook (CodeDeploy AfterAllowTraffic).

fn main() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::init_trace::mark("main");
    let runtime = shiftguard_common::runtime()?;
    shiftguard_common::init_trace::mark("runtime");
    runtime.block_on(hooks::serve(hooks::Phase::PostTraffic))
}
