//! The Lambda reads every function makes the same way: where an alias points and whether a
//! published version exists — each telling "missing" (`Ok(None)`) from "could not read" (`Err`,
//! the call and the SDK's whole cause chain).

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;

use crate::{error_text, found};

/// The version `alias` of `function` points to; `None` when the alias does not exist.
pub async fn alias_version(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
) -> Result<Option<String>, String> {
    let read = lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await;
    found(read)
        .map(|a| a.map(|a| a.function_version.unwrap_or_default()))
        .map_err(|e| format!("GetAlias({alias}) failed: {}", error_text(&e)))
}

/// A published version's configuration; `None` when Lambda says the version does not exist.
pub async fn function_version(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    version: &str,
) -> Result<Option<GetFunctionConfigurationOutput>, String> {
    let read = lambda
        .get_function_configuration()
        .function_name(function)
        .qualifier(version)
        .send()
        .await;
    found(read).map_err(|e| format!("GetFunctionConfiguration failed: {}", error_text(&e)))
}
