//! Writing an alias and waiting for one: the verified backup write after a lost `RevisionId` race,
//! and the poll for CodeDeploy's own restore.

use super::*;

/// Writes `version` (a backup for CodeDeploy's own restore), re-reading after a lost race; done
/// when the alias is all on it, whoever wrote it.
pub(super) async fn write_verified(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    last: Option<AliasState>,
    deadline: Deadline,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    let mut alias = match last {
        Some(a) => a,
        None => read_alias(clients, &target.function, &target.alias).await?,
    };
    for _ in 1..=REVISION_CONFLICT_ATTEMPTS {
        if alias.all_on(version) {
            report.outcome = Outcome::Restored;
            report.after = Some(alias.summary());
            return Ok(());
        }
        match write_alias(clients, target, version, &alias, deadline).await? {
            Written::Done(written) => return verify(report, version, written),
            Written::Conflict => {
                alias = read_alias(clients, &target.function, &target.alias).await?;
            }
        }
    }
    Err(AliasError::Contended(REVISION_CONFLICT_ATTEMPTS))
}

pub(super) fn verify(
    report: &mut TargetReport,
    version: &str,
    written: AliasState,
) -> Result<(), AliasError> {
    report.after = Some(written.summary());
    if !written.all_on(version) {
        return Err(AliasError::NotVerified(written.summary().to_string()));
    }
    report.outcome = Outcome::Restored;
    Ok(())
}

pub(super) enum Written {
    Done(AliasState),
    /// `RevisionId` did not match: the alias changed since it was read.
    Conflict,
}

/// One `UpdateAlias` to `version` with no weights; `ResourceConflictException` (a function update
/// in progress) is retried with backoff while the deadline allows, like a throttle.
pub(super) async fn write_alias(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    alias: &AliasState,
    deadline: Deadline,
) -> Result<Written, AliasError> {
    // Plans never ask for anything else; this is the last line of defence, in release builds too.
    if !is_version_number(version) {
        return Err(AliasError::Refused(format!(
            "{version:?} is not a published version: never written"
        )));
    }
    let mut backoff = CONFLICT_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut update = clients
            .lambda
            .update_alias()
            .function_name(&target.function)
            .name(&target.alias)
            .function_version(version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(Default::default()))
                    .build(),
            );
        if let Some(rev) = &alias.revision_id {
            update = update.revision_id(rev);
        }
        // Boxed: the SDK's future off this frame (see `shiftguard_common::lambda`).
        match Box::pin(update.send()).await {
            Ok(out) => {
                return Ok(Written::Done(AliasState::from_api(
                    out.function_version,
                    out.routing_config,
                    out.revision_id,
                )))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_precondition_failed_exception()) =>
            {
                return Ok(Written::Conflict)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_conflict_exception())
                    && attempt < CONFLICT_ATTEMPTS
                    && deadline.left(backoff).is_none_or(|l| !l.is_zero()) =>
            {
                warn!(function = %target.function, alias = %target.alias, attempt, error = %error_text(&e), "UpdateAlias: resource conflict (an update is in progress); retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(aws("UpdateAlias")(e)),
        }
    }
}

/// Polls the alias until it is all on `version`, within `wait` and the deadline (less the backup
/// write's reserve). Read errors are retried within that budget. Returns the restored state, or
/// the last state read.
pub(super) async fn await_alias(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    wait: Duration,
    deadline: Deadline,
) -> (Option<AliasState>, Option<AliasState>) {
    let until = Instant::now() + deadline.cap(wait, BACKUP_RESERVE);
    let mut last = None;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(
            left.clamp(Duration::from_millis(100), POLL_READ_TIMEOUT),
            read_alias(clients, &target.function, &target.alias),
        )
        .await;
        match read {
            Ok(Ok(alias)) if alias.all_on(version) => return (Some(alias), None),
            Ok(Ok(alias)) => last = Some(alias),
            Ok(Err(e)) => {
                warn!(function = %target.function, alias = %target.alias, error = %e, "reading the alias while waiting for CodeDeploy failed; retrying")
            }
            Err(_) => {
                warn!(function = %target.function, alias = %target.alias, "reading the alias while waiting for CodeDeploy timed out; retrying")
            }
        }
        if Instant::now() + CODEDEPLOY_POLL >= until {
            return (None, last);
        }
        tokio::time::sleep(CODEDEPLOY_POLL).await;
    }
}
