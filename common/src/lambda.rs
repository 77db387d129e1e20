//! The Lambda reads every function makes the same way: where an alias points and whether a
//! published version exists — each telling "missing" (`Ok(None)`) from "could not read" (`Err`,
//! the call and the SDK's whole cause chain).
//!
//! The SDK's request futures are large (tens of KB): each is boxed where it is awaited, so that
//! it does not sit in every caller's state and stack frame (`make bench`: rollback's main-thread
//! stack 0.51 → 0.36 MB with its own reads boxed the same way).

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;

use crate::{error_text, found};

/// The version `alias` of `function` points to; `None` when the alias does not exist.
pub async fn alias_version(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
) -> Result<Option<String>, String> {
    let read = Box::pin(
        lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send(),
    )
    .await;
    match found(read) {
        Ok(Some(a)) => match a.function_version {
            Some(version) => Ok(Some(version)),
            // Lambda always answers with one; an answer without one is not a version to use.
            None => Err(format!(
                "GetAlias({alias}) answered without a FunctionVersion"
            )),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(format!("GetAlias({alias}) failed: {}", error_text(&e))),
    }
}

/// A published version's configuration; `None` when Lambda says the version does not exist.
pub async fn function_version(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    version: &str,
) -> Result<Option<GetFunctionConfigurationOutput>, String> {
    let read = Box::pin(
        lambda
            .get_function_configuration()
            .function_name(function)
            .qualifier(version)
            .send(),
    )
    .await;
    found(read).map_err(|e| format!("GetFunctionConfiguration failed: {}", error_text(&e)))
}
