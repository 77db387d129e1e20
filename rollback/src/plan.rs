//! Rollback's decision for one Lambda alias, as a pure function of what was read.
//!
//! [`plan_alias`] takes the alias's routing, the stable-pointer alias (present, missing or
//! unreadable), the in-flight CodeDeploy deployments that shift the alias (or the error that kept
//! us from reading them), the alarm's state-change time, the configuration and the versions known
//! to exist, and returns what to do. `alias.rs` reads those inputs and carries the plan out; every
//! rule lives here, where a table test and a property test can reach it.
//!
//! The rules, in order (first match wins), and how the stable version is chosen: the table in
//! rollback/README.md#what-it-does-with-an-alarm (step 4), the one place they are written down.
//!
//! A missing pointer alias is "no information" (fall through); an unreadable one, or a CodeDeploy
//! lookup that failed, falls through too but marks the invocation for retry. No plan ever writes
//! `$LATEST`, a version not known to exist, or a version being deployed or rolled away from.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::is_version_number;
use crate::traffic::AliasState;
use crate::truth::{began_after, Marker, Status, PROMOTED_WATCH_MS, STALE_AFTER_MS};

/// What reading the stable-pointer alias gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerRead {
    NotConfigured,
    /// The alias does not exist (yet): post-traffic creates it after a first success.
    Missing,
    Unreadable(String),
    Found(String),
}

/// An unfinished CodeDeploy deployment that shifts the alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub id: String,
    /// CodeDeploy's own rollback deployment (creator `codeDeployRollback` or `rollbackInfo`).
    pub is_rollback: bool,
    pub create_time_ms: Option<i64>,
    /// Ordinary deployment: the version traffic comes from. Rollback: the one rolled away from.
    pub current_version: Option<String>,
    /// Ordinary deployment: the version being deployed. Rollback: the one it restores.
    pub target_version: Option<String>,
}

/// Everything the decision depends on.
#[derive(Debug, Clone)]
pub struct AliasFacts<'a> {
    pub alias: &'a AliasState,
    pub configured_stable: Option<&'a str>,
    pub pointer_name: Option<&'a str>,
    pub pointer: &'a PointerRead,
    /// The in-flight deployments, or why they could not be read.
    pub deployments: Result<&'a [InFlight], &'a str>,
    /// When the alarm(s) changed state, milliseconds since the Unix epoch.
    pub alarm_time_ms: Option<i64>,
    /// Versions known to exist besides those the alias names (the pointer's, any checked).
    pub existing: &'a BTreeSet<String>,
    /// The rollout marker `shift` keeps on this alias, if any.
    pub rollout: Option<&'a Marker>,
    /// What an earlier round of this invocation decided from its first read: a writer that wins
    /// a `RevisionId` race does not erase what the alarm was about.
    pub remembered: Option<&'a FirstRead>,
}

/// The first read's stable version, and the versions it saw beside it (what the alarm is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstRead {
    pub stable: Stable,
    pub canaries: Vec<String>,
}

impl FirstRead {
    pub fn of(alias: &AliasState, stable: &Stable) -> FirstRead {
        FirstRead {
            stable: stable.clone(),
            canaries: alias
                .serving()
                .filter(|v| **v != stable.version)
                .cloned()
                .collect(),
        }
    }
}

/// Where the stable version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StableSource {
    /// `stableVersion` in ROLLBACK_TARGETS.
    Configured,
    /// The stable-pointer alias.
    Pointer,
    /// The version CodeDeploy's deployment calls current (or its rollback restores).
    CodeDeploy,
    /// The older of the alias's two versions.
    OlderOfTwo,
    /// The production a rollout (`shift`) started from, from its marker.
    Rollout,
    /// What this invocation's first read decided, before another writer changed the alias.
    FirstRead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stable {
    pub version: String,
    pub source: StableSource,
}

/// The one thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to write.
    AlreadyStable,
    /// Point the alias at `version` with no additional weights, then verify.
    Restore { version: String },
    /// Stop an ordinary deployment with auto-rollback; CodeDeploy then restores
    /// `codedeploy_restores`. If it has not in time, write `backup` (never, when `None`).
    Stop {
        deployment_id: String,
        codedeploy_restores: Option<String>,
        backup: Option<String>,
    },
    /// CodeDeploy's rollback deployment is in flight: never stop it; wait for it to restore
    /// `restores`; if it has not in time, write `backup` (never, when `None`).
    AwaitRollback {
        deployment_id: String,
        restores: String,
        backup: Option<String>,
    },
    /// The deployment in flight was created after the alarm fired: not what the alarm is about.
    LeaveAlone { deployment_id: String },
    /// The rollout on the alias began after the alarm fired: not what the alarm is about.
    LeaveRolloutAlone { rollout: String },
    /// No safe action: the reason says why.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub step: Step,
    pub stable: Option<Stable>,
    /// Why this step, in words for the report.
    pub reason: String,
    /// What else was noticed (missing pointer, disagreements).
    pub notes: Vec<String>,
    /// Set when the invocation must fail after the step so that Lambda retries (a lookup failed).
    pub retry: Option<String>,
}

impl Plan {
    /// Every version this plan may write to the alias.
    pub fn writes(&self) -> Vec<&str> {
        match &self.step {
            Step::Restore { version } => vec![version.as_str()],
            Step::Stop { backup, .. } | Step::AwaitRollback { backup, .. } => {
                backup.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The older of the versions the alias sends traffic to, when it sends traffic to two or more:
/// a canary is always the newer publish, in CodeDeploy's `[old, {new: w}]` shape and in the
/// hand-rolled `[new, {old: w}]` one. `Ok(None)`: one version. `Err`: it routes to something that
/// is not a published version.
pub fn older_of_two(alias: &AliasState) -> Result<Option<String>, String> {
    let mut versions: Vec<&String> = std::iter::once(&alias.version)
        .chain(
            alias
                .weights
                .iter()
                .filter(|(_, w)| **w > 0.0)
                .map(|(v, _)| v),
        )
        .collect();
    if versions.len() < 2 {
        return Ok(None);
    }
    if let Some(bad) = versions.iter().find(|v| !is_version_number(v)) {
        return Err(format!(
            "the alias routes to {bad:?}, which is not a published version number"
        ));
    }
    versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    Ok(Some(versions[0].clone()))
}

fn latest_first(deployments: &mut [&InFlight]) {
    deployments.sort_by_key(|d| std::cmp::Reverse(d.create_time_ms.unwrap_or(i64::MIN)));
}

/// Created after the alarm changed state (by more than [`STALE_AFTER_MS`]).
pub fn is_stale(d: &InFlight, alarm_time_ms: Option<i64>) -> bool {
    matches!((d.create_time_ms, alarm_time_ms), (Some(created), Some(alarm)) if created > alarm.saturating_add(STALE_AFTER_MS))
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(|ms| {
        aws_smithy_types::DateTime::from_millis(ms)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .ok()
    })
    .unwrap_or_else(|| "an unknown time".into())
}

/// Decides what to do for one alias. See the module documentation for the rules.
pub fn plan_alias(f: &AliasFacts) -> Plan {
    let mut notes = Vec::new();
    let mut retry = None;
    let pointer_name = f.pointer_name.unwrap_or("(stable pointer)");
    let pointer = match f.pointer {
        PointerRead::NotConfigured => None,
        PointerRead::Missing => {
            notes.push(format!(
                "the stable pointer alias {pointer_name} does not exist yet (post-traffic creates it after a first success): no information from it"
            ));
            None
        }
        PointerRead::Unreadable(e) => {
            notes.push(format!(
                "the stable pointer alias {pointer_name} could not be read ({e}): decided without it"
            ));
            retry = Some(format!(
                "the stable pointer alias {pointer_name} could not be read: {e}"
            ));
            None
        }
        PointerRead::Found(v) => Some(v.as_str()),
    };
    let deployments: &[InFlight] = match f.deployments {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!(
                "could not check for a CodeDeploy deployment in flight ({e}): restoring the alias directly"
            ));
            retry = Some(format!("CodeDeploy lookup failed: {e}"));
            &[]
        }
    };
    // A version this plan may write: published, known to exist.
    let writable = |v: &str| {
        is_version_number(v) && (f.existing.contains(v) || f.alias.versions().any(|a| a == v))
    };
    // What the team said is stable, when it said anything.
    let explicit: Option<Stable> = f
        .configured_stable
        .map(|v| Stable {
            version: v.to_string(),
            source: StableSource::Configured,
        })
        .or_else(|| {
            pointer.map(|v| Stable {
                version: v.to_string(),
                source: StableSource::Pointer,
            })
        });
    let plan = |step: Step, stable: Option<Stable>, reason: String, notes: Vec<String>| Plan {
        step,
        stable,
        reason,
        notes,
        retry: retry.clone(),
    };

    // Versions no plan may write: those any in-flight deployment is deploying, and those any
    // CodeDeploy rollback is rolling away from.
    let unsafe_versions: BTreeSet<&str> = deployments
        .iter()
        .filter_map(|d| {
            if d.is_rollback {
                d.current_version.as_deref()
            } else {
                d.target_version.as_deref()
            }
        })
        .collect();

    // 1. CodeDeploy's own rollback in flight.
    let mut rollbacks: Vec<&InFlight> = deployments.iter().filter(|d| d.is_rollback).collect();
    latest_first(&mut rollbacks);
    if let Some(rb) = rollbacks.first() {
        let Some(restores) = rb.target_version.clone() else {
            return plan(
                Step::Refuse,
                explicit,
                format!("CodeDeploy's rollback deployment {} is in flight but names no version it restores: rollback neither stops it nor writes the alias", rb.id),
                notes,
            );
        };
        // CodeDeploy is in charge of this alias: the version it restores is the one that counts.
        let stable = Stable {
            version: restores.clone(),
            source: StableSource::CodeDeploy,
        };
        if let Some(s) = explicit.as_ref().filter(|s| s.version != restores) {
            notes.push(format!("CodeDeploy's rollback restores version {restores} but the {:?} stable version is {}: rollback follows CodeDeploy and never fights it", s.source, s.version));
        }
        if f.alias.all_on(&restores) {
            return plan(
                Step::AlreadyStable,
                Some(stable),
                format!("CodeDeploy's rollback deployment {} has already put the alias on version {restores}", rb.id),
                notes,
            );
        }
        let backup = if !writable(&restores) {
            notes.push(format!("version {restores:?}, which CodeDeploy's rollback restores, is not a published version known to exist: rollback will not write it"));
            None
        } else if unsafe_versions.contains(restores.as_str()) {
            notes.push(format!("version {restores}, which CodeDeploy's rollback deployment {} restores, is also being deployed or rolled away from by a deployment in flight: rollback will not write it", rb.id));
            None
        } else {
            Some(restores.clone())
        };
        return plan(
            Step::AwaitRollback {
                deployment_id: rb.id.clone(),
                restores: restores.clone(),
                backup,
            },
            Some(stable),
            format!("CodeDeploy's rollback deployment {} is in flight: never stopped; waiting for it to restore version {restores}", rb.id),
            notes,
        );
    }

    // 2 and 3. Ordinary deployments: those created after the alarm are not what it is about.
    let (mut stale, mut live): (Vec<&InFlight>, Vec<&InFlight>) = deployments
        .iter()
        .filter(|d| !d.is_rollback)
        .partition(|d| is_stale(d, f.alarm_time_ms));
    latest_first(&mut live);
    latest_first(&mut stale);
    let inferred = older_of_two(f.alias);
    if let Some(d) = live.first() {
        let codedeploy = d
            .current_version
            .clone()
            .filter(|v| is_version_number(v))
            .map(|v| Stable {
                version: v,
                source: StableSource::CodeDeploy,
            });
        // CodeDeploy is in charge of this alias and its rollback restores its current version: any
        // write of ours (when it is late, or the stop fails) is that same version, so the two never
        // disagree. Only when CodeDeploy's version is unusable ($LATEST, missing) does the named or
        // inferred stable version stand in.
        if let (Some(e), Some(c)) = (&explicit, &codedeploy) {
            if e.version != c.version {
                notes.push(format!("CodeDeploy's rollback restores version {} but the {:?} stable version is {}: rollback follows CodeDeploy and never fights it", c.version, e.source, e.version));
            }
        }
        let stable = codedeploy.or_else(|| explicit.clone()).or_else(|| {
            inferred.clone().ok().flatten().map(|v| Stable {
                version: v,
                source: StableSource::OlderOfTwo,
            })
        });
        let backup = match &stable {
            None => {
                notes.push("no stable version is known: if CodeDeploy does not restore the alias, rollback will not write it".into());
                None
            }
            Some(s) if unsafe_versions.contains(s.version.as_str()) => {
                notes.push(format!("the stable version {} is being deployed by a deployment in flight: rollback will not write it", s.version));
                None
            }
            Some(s) if !writable(&s.version) => {
                notes.push(format!("the stable version {:?} is not a published version known to exist: rollback will not write it", s.version));
                None
            }
            Some(s) => Some(s.version.clone()),
        };
        if let (Some(c), Some(s)) = (&d.current_version, &stable) {
            if c != &s.version {
                notes.push(format!("CodeDeploy's rollback will restore {c:?}, which rollback never writes; its own writes go to {} ({:?})", s.version, s.source));
            }
        }
        return plan(
            Step::Stop {
                deployment_id: d.id.clone(),
                codedeploy_restores: d.current_version.clone(),
                backup,
            },
            stable,
            format!(
                "CodeDeploy deployment {} is shifting the alias: stopping it with auto-rollback",
                d.id
            ),
            notes,
        );
    }
    if let Some(d) = stale.first() {
        return plan(
            Step::LeaveAlone {
                deployment_id: d.id.clone(),
            },
            explicit,
            format!(
                "deployment {} was created at {}, after the alarm changed state at {}: the alarm is not about it, so it is left alone",
                d.id,
                time_text(d.create_time_ms),
                time_text(f.alarm_time_ms)
            ),
            notes,
        );
    }

    // 4. No deployment: the alias alone. A rollout's marker is the best fact there is.
    let from_rollout = match f.rollout {
        Some(m) if !m.status.finished() => {
            if began_after(m, f.alarm_time_ms) {
                    return plan(
                        Step::LeaveRolloutAlone {
                            rollout: m.id.clone(),
                        },
                        explicit,
                        format!(
                            "rollout {} began at {}, after the alarm changed state at {}: the alarm is not about it, so it is left alone",
                            m.id,
                            time_text(m.start_ms),
                            time_text(f.alarm_time_ms)
                        ),
                        notes,
                    );
            }
            m.stable.clone()
        }
        // A late alarm after a promotion still puts the previous production back, for an hour.
        Some(m) if m.status == Status::Promoted => match f.alarm_time_ms {
            Some(alarm)
                if alarm >= m.at_ms.saturating_sub(STALE_AFTER_MS)
                    && alarm <= m.at_ms.saturating_add(PROMOTED_WATCH_MS) =>
            {
                m.stable.clone().or_else(|| m.prev.clone())
            }
            _ => None,
        },
        _ => None,
    }
    .map(|version| Stable {
        version,
        source: StableSource::Rollout,
    });
    if let (Some(r), Some(e)) = (&from_rollout, &explicit) {
        if r.version != e.version {
            notes.push(format!(
                "the rollout's production is version {} but the {:?} stable version is {}: the rollout's marker is the fresher fact",
                r.version, e.source, e.version
            ));
        }
    }
    // What the first read knew counts while the alias still serves a version the alarm was
    // about; a writer that moved it to other versions altogether (a new deployment) is decided
    // from the new state.
    let remembered = f.remembered.filter(|r| {
        from_rollout.is_none()
            && explicit.is_none()
            && f.alias.serving().any(|v| r.canaries.contains(v))
    });
    let explicit = from_rollout.or(explicit).or_else(|| {
        remembered.map(|r| Stable {
            version: r.stable.version.clone(),
            source: StableSource::FirstRead,
        })
    });
    let stable = match (explicit, inferred) {
        (Some(s), _) => s,
        (None, Ok(Some(v))) => Stable {
            version: v,
            source: StableSource::OlderOfTwo,
        },
        (None, Ok(None)) => {
            return plan(
                Step::AlreadyStable,
                None,
                format!(
                    "the alias serves only version {} and nothing says it is the wrong one: nothing to roll back",
                    f.alias.version
                ),
                notes,
            )
        }
        (None, Err(e)) => {
            return plan(
                Step::Refuse,
                None,
                format!("cannot decide the stable version: {e}"),
                notes,
            )
        }
    };
    if !is_version_number(&stable.version) {
        return plan(
            Step::Refuse,
            None,
            format!(
                "cannot decide the stable version: {:?} ({:?}) is not a published version (never $LATEST)",
                stable.version, stable.source
            ),
            notes,
        );
    }
    if f.alias.all_on(&stable.version) {
        let reason = format!("already 100% on version {}", stable.version);
        return plan(Step::AlreadyStable, Some(stable), reason, notes);
    }
    if !writable(&stable.version) {
        let reason = format!(
            "the stable version {} ({:?}) does not exist: refusing to point the alias at it",
            stable.version, stable.source
        );
        return plan(Step::Refuse, Some(stable), reason, notes);
    }
    let reason = format!(
        "point the alias at the stable version {} ({:?}) with no additional weights",
        stable.version, stable.source
    );
    plan(
        Step::Restore {
            version: stable.version.clone(),
        },
        Some(stable),
        reason,
        notes,
    )
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
