//! What one invocation of a rollout does, as a pure function of what it read: [`decide`].

use std::time::Duration;

use super::{Marker, Plan, RestoreRecord, Status, Why, MARKER_KEY};

// ---- the decision ----------------------------------------------------------------------------

/// Where traffic is, as read from the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// The canary's share, a whole percent, the same in every forward.
    Canary(u8),
    /// Forwards with different whole shares (a move that stopped halfway).
    Split(Vec<u8>),
    /// The canary has no traffic, but production is not what the rollout knows (an alias put on
    /// another version): someone restored it their way.
    Elsewhere(String),
    /// Not a state a rollout can be in (a third group with traffic, a share that is not a whole
    /// percent, another version on the alias…).
    Unexpected(String),
}

impl Traffic {
    /// Whether every share is one of `allowed`.
    pub fn within(&self, allowed: &[u8]) -> bool {
        match self {
            Traffic::Canary(w) => allowed.contains(w),
            Traffic::Split(ws) => ws.iter().all(|w| allowed.contains(w)),
            _ => false,
        }
    }
}

/// What one invocation read.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub now_ms: i64,
    /// The marker on the target, if any (`Err` holds an unreadable tag's text).
    pub marker: Option<Result<Marker, String>>,
    pub traffic: Traffic,
    /// The plan's alarms that are in ALARM now.
    pub alarms_in_alarm: Vec<String>,
    /// The last restore record rollback left on the target.
    pub restored: Option<RestoreRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing of this rollout moved yet: run the checks before, then move to step 1.
    Start,
    /// Write this step's weights again (a move that did not finish); traffic is on one of the
    /// two steps' weights.
    Move { step: usize },
    /// Baking: come back later.
    Wait { step: usize, ms: u64 },
    /// The bake is over: run the checks after it, then move on or promote.
    Judge { step: usize },
    /// Make the new version production (the carrying out reads traffic first).
    Promote,
    /// Stop the rollout. `restore`: traffic must be put back on production first.
    Abort {
        reason: String,
        why: Why,
        restore: bool,
    },
    /// The rollout already ended: report it again, write nothing (but publish a summary that
    /// never reached the topic).
    Finished { status: Status, notified: bool },
    /// Cannot run: nothing is touched and the invocation fails with this.
    Refuse(String),
}

fn alarms_text(alarms: &[String]) -> String {
    alarms.join(", ")
}

/// The abort for traffic that is not where the rollout put it: when production already has
/// everything (restored by rollback or a person) nothing is written; otherwise production is
/// restored.
pub fn changed_outside(traffic: &Traffic, during: &str) -> Decision {
    match traffic {
        Traffic::Canary(0) => Decision::Abort {
            reason: format!(
                "production was restored outside the rollout (a rollback or a person) {during}"
            ),
            why: Why::Outside,
            restore: false,
        },
        Traffic::Elsewhere(what) => Decision::Abort {
            reason: format!(
                "production was restored outside the rollout {during}: {what}; left as it is"
            ),
            why: Why::Outside,
            restore: false,
        },
        other => Decision::Abort {
            reason: format!(
                "traffic changed outside the rollout {during}: {}",
                describe_traffic(other)
            ),
            why: Why::Outside,
            restore: true,
        },
    }
}

pub fn describe_traffic(t: &Traffic) -> String {
    match t {
        Traffic::Canary(w) => format!("the canary has {w}%"),
        Traffic::Split(ws) => format!("the forwards give the canary {ws:?}%"),
        Traffic::Elsewhere(w) | Traffic::Unexpected(w) => w.clone(),
    }
}

/// What this invocation does. Pure: the I/O layer read `facts`; it carries the decision out.
pub fn decide(plan: &Plan, facts: &Facts) -> Decision {
    let ours = match &facts.marker {
        Some(Ok(m)) if m.id == plan.id => Some(m),
        Some(Ok(m)) if !m.status.finished() => {
            return Decision::Refuse(format!(
                "rollout {:?} is {} at step {} on this target: one rollout at a time (wait for it, or abort it)",
                m.id,
                m.status.as_str(),
                m.step
            ))
        }
        Some(Err(raw)) => {
            return Decision::Refuse(format!(
                "the target's {MARKER_KEY} tag is not a marker ShiftGuard wrote ({raw:?}): refusing to guess where a rollout stands"
            ))
        }
        _ => None,
    };
    let alarming = !facts.alarms_in_alarm.is_empty();
    let start = |during: &str| {
        match &facts.traffic {
        Traffic::Canary(0) if alarming => Decision::Abort {
            reason: format!(
                "alarm(s) in ALARM {during}: {}; no traffic was moved",
                alarms_text(&facts.alarms_in_alarm)
            ),
            why: Why::Alarm,
            restore: false,
        },
        Traffic::Canary(0) => Decision::Start,
        other => Decision::Refuse(format!(
            "{}, and no step of this rollout is recorded on the target: refusing to start from there (put production back to 100% first)",
            describe_traffic(other)
        )),
    }
    };
    let Some(m) = ours else {
        return start("before the rollout started");
    };
    let weight_of = |step: usize| -> u8 {
        if step == 0 {
            0
        } else {
            plan.steps.get(step - 1).map_or(100, |s| s.weight)
        }
    };
    if m.step > plan.steps.len() {
        return Decision::Refuse(format!(
            "the marker says step {} but the plan has {} steps: the plan changed during the rollout",
            m.step,
            plan.steps.len()
        ));
    }
    let alarm_abort = || Decision::Abort {
        reason: format!(
            "alarm(s) in ALARM during step {}: {}",
            m.step,
            alarms_text(&facts.alarms_in_alarm)
        ),
        why: Why::Alarm,
        restore: true,
    };
    let during = format!("during step {} ({}%)", m.step, weight_of(m.step));
    // A restore by rollback since the rollout began ends it, whatever the marker says: its writes
    // never survive a rollback (traffic goes back to production if anything is elsewhere).
    if let Some(r) = facts.restored.as_ref().filter(|r| r.ends(m)) {
        if !m.status.finished() && m.status != Status::Aborting {
            return Decision::Abort {
                reason: format!(
                    "rollback restored production {during} (by {}, at {})",
                    r.by, r.at_ms
                ),
                why: Why::Rollback,
                restore: facts.traffic != Traffic::Canary(0),
            };
        }
    }
    match m.status {
        Status::Promoted | Status::Aborted => Decision::Finished {
            status: m.status,
            notified: m.notified,
        },
        Status::Aborting => Decision::Abort {
            reason: format!(
                "resuming an abort that did not finish (begun for: {})",
                m.why.as_deref().unwrap_or("unknown")
            ),
            why: match m.why.as_deref() {
                Some("alarm") => Why::Alarm,
                Some("checks") => Why::Checks,
                Some("interrupted") => Why::Interrupted,
                Some("promotion") => Why::Promotion,
                Some("rollback") => Why::Rollback,
                _ => Why::Outside,
            },
            restore: true,
        },
        // The last bake's checks passed: promotion reads traffic itself before touching anything
        // and aborts if the canary no longer has it all.
        // Never while an alarm is in ALARM: production (still the old version, or put back
        // from `prev`) is restored instead.
        Status::Promoting if alarming => alarm_abort(),
        Status::Promoting => Decision::Promote,
        // Started, checks before not yet passed: nothing moved (step 0).
        Status::Baking if m.step == 0 => start("before the first step"),
        Status::Moving => {
            let (from, to) = (weight_of(m.step.saturating_sub(1)), weight_of(m.step));
            if alarming {
                return alarm_abort();
            }
            if m.step == 1 && facts.traffic == Traffic::Canary(0) {
                // Either the write never landed, or it did and a rollback restored production
                // before this run: the two cannot be told apart, and writing again could undo a
                // rollback. (A write that failed cleanly put the marker back to step 0.)
                return Decision::Abort {
                    reason: "the write of step 1 was interrupted and production has all traffic: that cannot be told apart from a rollback's restore, so it is not written again; start a new rollout (a new id)".into(),
                    why: Why::Interrupted,
                    restore: false,
                };
            }
            if facts.traffic.within(&[from, to]) {
                Decision::Move { step: m.step }
            } else {
                changed_outside(&facts.traffic, &during)
            }
        }
        Status::Baking => {
            if facts.traffic != Traffic::Canary(weight_of(m.step)) {
                return changed_outside(&facts.traffic, &during);
            }
            if alarming {
                return alarm_abort();
            }
            let bake = plan
                .steps
                .get(m.step - 1)
                .map_or(Duration::ZERO, |s| s.bake);
            let done_at = m.at_ms.saturating_add(bake.as_millis() as i64);
            if facts.now_ms < done_at {
                Decision::Wait {
                    step: m.step,
                    ms: (done_at - facts.now_ms) as u64,
                }
            } else {
                Decision::Judge { step: m.step }
            }
        }
    }
}

/// After the checks of a bake passed: the next step, or promotion after the last.
pub fn after_judgement(plan: &Plan, step: usize) -> Decision {
    if step >= plan.steps.len() {
        Decision::Promote
    } else {
        Decision::Move { step: step + 1 }
    }
}
