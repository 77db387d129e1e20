//! What rollback reads about an alias before deciding: the alias, the pointer, CodeDeploy's
//! deployments in flight, the versions a plan might write, and the function's ShiftGuard tags
//! (with the restore record written beside the first read).

use super::*;

// From the SDK (here, beside the calls): the state itself is pure (crate::traffic).
impl AliasState {
    /// From what GetAlias and UpdateAlias both return.
    pub(super) fn from_api(
        version: Option<String>,
        routing: Option<AliasRoutingConfiguration>,
        revision_id: Option<String>,
    ) -> Self {
        AliasState {
            version: version.unwrap_or_default(),
            weights: routing
                .and_then(|r| r.additional_version_weights)
                .map(|w| w.into_iter().collect())
                .unwrap_or_default(),
            revision_id,
            arn: None,
        }
    }
}

pub async fn read_alias(
    clients: &Clients,
    function: &str,
    alias: &str,
) -> Result<AliasState, AliasError> {
    // Boxed: the SDK's future off this frame (see `shiftguard_common::lambda`).
    let out = Box::pin(
        clients
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send(),
    )
    .await
    .map_err(aws("GetAlias"))?;
    let mut state = AliasState::from_api(out.function_version, out.routing_config, out.revision_id);
    state.arn = out.alias_arn;
    Ok(state)
}

pub(super) async fn read_pointer(
    clients: &Clients,
    function: &str,
    pointer: Option<&str>,
) -> PointerRead {
    let Some(pointer) = pointer else {
        return PointerRead::NotConfigured;
    };
    match shiftguard_common::lambda::alias_version(&clients.lambda, function, pointer).await {
        Ok(Some(version)) => PointerRead::Found(version),
        Ok(None) => PointerRead::Missing,
        Err(e) => PointerRead::Unreadable(e),
    }
}

/// Whether a published version exists: `Ok(false)` when Lambda says it does not, `Err` when it
/// could not tell.
pub(super) async fn version_exists(
    clients: &Clients,
    function: &str,
    version: &str,
) -> Result<bool, String> {
    shiftguard_common::lambda::function_version(&clients.lambda, function, version)
        .await
        .map(|c| c.is_some())
}

pub(super) fn in_flight(found: &AliasDeployment) -> InFlight {
    InFlight {
        id: found.deployment.id.clone(),
        is_rollback: found.deployment.is_rollback(),
        create_time_ms: found.deployment.create_time_ms,
        current_version: found.target.current_version.clone(),
        target_version: found.target.target_version.clone(),
    }
}

/// What one round read: the inputs of [`plan_alias`].
pub(super) struct Inputs {
    pub(super) alias: AliasState,
    pub(super) pointer: PointerRead,
    pub(super) deployments: Result<Vec<InFlight>, String>,
    pub(super) existing: BTreeSet<String>,
    pub(super) notes: Vec<String>,
    /// The rollout marker and restore record on the function.
    pub(super) tags: TagFacts,
    /// Where the tags live (for the final record).
    pub(super) tagged: Option<Tagged>,
    /// Set when the tags could not be read or the record not written: retried.
    pub(super) retry: Option<String>,
}

impl Inputs {
    pub(super) fn decide(
        &self,
        target: &LambdaAliasTarget,
        alarm_time_ms: Option<i64>,
        remembered: Option<&FirstRead>,
    ) -> Plan {
        plan_alias(&AliasFacts {
            alias: &self.alias,
            configured_stable: target.stable_version.as_deref(),
            pointer_name: target.stable_alias.as_deref(),
            pointer: &self.pointer,
            deployments: self.deployments.as_deref().map_err(String::as_str),
            alarm_time_ms,
            existing: &self.existing,
            rollout: self.tags.rollout(),
            remembered,
        })
    }
}

/// The function's ShiftGuard tags, and (round 1 of rollback's own runs) the intent record written
/// beside them.
pub(super) struct TagsRead {
    pub(super) facts: TagFacts,
    pub(super) problems: Vec<String>,
}

pub(super) async fn read_tags_and_record(
    clients: &Clients,
    tagged: &Tagged,
    alias: &str,
    intent: Option<&Intent>,
) -> TagsRead {
    let record = async {
        match intent {
            Some(i) => Some(
                tagged
                    .tag(clients, &record_key(Some(alias)), &i.record(None).encode())
                    .await,
            ),
            None => None,
        }
    };
    let (tags, recorded) = tokio::join!(tagged.read(clients), record);
    let mut problems = Vec::new();
    let facts = match tags {
        Ok(t) => TagFacts::from_tags(&t, Some(alias)),
        Err(e) => {
            problems.push(format!(
                "the rollout marker could not be read ({e}): decided without it"
            ));
            TagFacts::default()
        }
    };
    if let Some(Err(e)) = recorded {
        problems.push(format!(
            "the restore record could not be written ({e}): a rollout may not see this restore"
        ));
    }
    TagsRead { facts, problems }
}

/// Time kept for a direct restore when a CodeDeploy call is slow (at most half of what is left).
pub(super) fn restore_reserve(deadline: Deadline) -> Duration {
    deadline
        .left(Duration::ZERO)
        .map_or(RESTORE_RESERVE, |left| RESTORE_RESERVE.min(left / 2))
}

/// Reads everything the decision needs, at once: the alias, the pointer, the in-flight CodeDeploy
/// deployments (bounded so that a slow or throttled CodeDeploy leaves time to restore traffic),
/// and whether the versions the plan might write exist.
pub(super) async fn read_inputs(
    clients: &Clients,
    target: &LambdaAliasTarget,
    deadline: Deadline,
    intent: Option<&Intent>,
    remembered: Option<&FirstRead>,
) -> Result<Inputs, AliasError> {
    // The function's ARN named without a call (from this function's own ARN), so that the tags are
    // read — and the intent record written — in parallel with the alias: no extra round trip
    // before the restoring write.
    let named = clients
        .home
        .get()
        .map(|h| h.function_arn(&target.function))
        .or_else(|| {
            target
                .function
                .starts_with("arn:")
                .then(|| unqualified_function_arn(&target.function))
        })
        .map(Tagged::Function);
    let tags_first = async {
        match &named {
            Some(t) => Some(read_tags_and_record(clients, t, &target.alias, intent).await),
            None => None,
        }
    };
    let group = target
        .code_deploy
        .as_ref()
        .map(|g| (g.application.as_str(), g.deployment_group.as_str()));
    let lookup = codedeploy::in_flight_for_alias(
        &clients.codedeploy,
        group,
        &target.function,
        &target.alias,
    );
    let (alias, pointer, deployments, configured_exists, tags_first) = tokio::join!(
        read_alias(clients, &target.function, &target.alias),
        read_pointer(clients, &target.function, target.stable_alias.as_deref()),
        deadline.within(restore_reserve(deadline), lookup),
        async {
            match &target.stable_version {
                Some(v) => Some(version_exists(clients, &target.function, v).await),
                None => None,
            }
        },
        tags_first,
    );
    let alias = alias?;
    // The ARN Lambda answered wins over the one named: read again (one more round trip) only when
    // the two differ or none could be named.
    let answered = alias
        .arn
        .as_deref()
        .map(unqualified_function_arn)
        .map(Tagged::Function);
    let (tagged, tags) = match (tags_first, named, answered) {
        (Some(read), Some(n), Some(a)) if n == a => (Some(n), read),
        (Some(read), Some(n), None) => (Some(n), read),
        (_, _, Some(a)) => {
            let read = read_tags_and_record(clients, &a, &target.alias, intent).await;
            (Some(a), read)
        }
        (_, _, None) => (
            None,
            TagsRead {
                facts: TagFacts::default(),
                problems: vec!["the function's ARN is not known: its rollout marker was not read and no restore record was left".into()],
            },
        ),
    };
    let deployments: Result<Vec<InFlight>, String> = match deployments {
        Ok(Ok(found)) => Ok(found.iter().map(in_flight).collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(out_of_time) => Err(format!(
            "the CodeDeploy lookup did not finish in time ({out_of_time})"
        )),
    };

    let mut existing: BTreeSet<String> = alias.versions().cloned().collect();
    if let PointerRead::Found(v) = &pointer {
        existing.insert(v.clone());
    }
    let mut notes = Vec::new();
    match (&target.stable_version, configured_exists) {
        (Some(v), Some(Ok(true))) => {
            existing.insert(v.clone());
        }
        (Some(v), Some(Err(e))) => notes.push(format!(
            "could not tell whether the configured stable version {v} exists: {e}"
        )),
        _ => {}
    }
    // The versions CodeDeploy, a rollout's marker or the first read would have us write, when
    // the alias does not already name them (one more round trip, only then).
    let rollout = tags.facts.rollout();
    let mut unknown: Vec<String> = deployments
        .iter()
        .flatten()
        .filter_map(|d| {
            if d.is_rollback {
                d.target_version.clone()
            } else {
                d.current_version.clone()
            }
        })
        .chain(rollout.and_then(|m| m.stable.clone()))
        .chain(rollout.and_then(|m| m.prev.clone()))
        .chain(remembered.map(|r| r.stable.version.clone()))
        .filter(|v| is_version_number(v) && !existing.contains(v))
        .collect();
    unknown.sort();
    unknown.dedup();
    let checked = futures::future::join_all(
        unknown
            .iter()
            .map(|v| version_exists(clients, &target.function, v)),
    )
    .await;
    for (v, exists) in unknown.into_iter().zip(checked) {
        match exists {
            Ok(true) => {
                existing.insert(v);
            }
            Ok(false) => {}
            Err(e) => notes.push(format!("could not tell whether version {v} exists: {e}")),
        }
    }
    let retry = (!tags.problems.is_empty()).then(|| tags.problems.join("; "));
    notes.extend(tags.problems);
    Ok(Inputs {
        alias,
        pointer,
        deployments,
        existing,
        notes,
        tags: tags.facts,
        tagged,
        retry,
    })
}
