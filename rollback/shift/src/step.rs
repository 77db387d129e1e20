//! One step of a rollout, carried out: the marker (claim, moves, aborts), the checks, the watch
//! after every write (restore record, marker, alarms), promotion's shared frame and the abort
//! through rollback's restore. What differs by target kind is in `target/`.

use std::time::Duration;

use hooks::config::CheckSet;
use hooks::runner::CheckResult;
use hooks::Phase;
use rollback::report::TargetReport;
use rollback::truth::TagFacts;
use serde_json::Value;
use tracing::{info, warn};

use crate::context::{Ctx, Failure};
use crate::plan::{self, Decision, Marker, Status, Traffic, Why};
use crate::{Action, StepSummary};

impl Ctx<'_> {
    pub(crate) fn marker(&self, step: usize, status: Status) -> Marker {
        Marker {
            id: self.plan.id.clone(),
            step,
            weight: self.weight(step),
            at_ms: shiftguard_common::emf::now_ms(),
            status,
            stable: self.marker_stable(),
            why: None,
            notified: false,
            start_ms: Some(self.start_ms),
            prev: self.prev.lock().ok().and_then(|p| p.clone()),
        }
    }

    /// Reads the target's tags again: a restore record newer than this rollout's start ends it
    /// (`Failure::RolledBack`); so does a marker that is no longer this rollout's (another
    /// claimed the target). Called after each of this rollout's writes and around promotion.
    pub(crate) async fn still_ours(&self) -> Result<(), Failure> {
        let tags = self
            .tagged()
            .read(&self.clients.rollback)
            .await
            .map_err(Failure::Aws)?;
        let facts = TagFacts::from_tags(&tags, self.alias_name());
        let me = self.marker(0, Status::Baking);
        if let Some(r) = facts.record.as_ref().filter(|r| r.ends(&me)) {
            return Err(Failure::RolledBack(format!(
                "rollback restored production (by {}, at {}) after this rollout began",
                r.by, r.at_ms
            )));
        }
        match facts.rollout() {
            Some(m) if m.id == self.plan.id => Ok(()),
            Some(m) => Err(Failure::Refused(format!(
                "rollout {:?} has claimed the target: this rollout ({}) writes nothing more",
                m.id, self.plan.id
            ))),
            None => Err(Failure::Refused(format!(
                "the rollout marker of {} is gone from the target: writing nothing more",
                self.plan.id
            ))),
        }
    }

    pub(crate) fn weight(&self, step: usize) -> u8 {
        if step == 0 {
            0
        } else {
            self.plan.steps[step - 1].weight
        }
    }

    pub(crate) async fn write(&self, marker: &Marker) -> Result<(), Failure> {
        let value = marker.encode();
        self.tagged()
            .tag(&self.clients.rollback, &self.read.tag_key, &value)
            .await
            .map_err(Failure::Aws)?;
        info!(rollout = %marker.id, step = marker.step, status = ?marker.status, marker = %value, "marker written");
        if let Ok(mut w) = self.written.lock() {
            *w = Some(marker.clone());
        }
        Ok(())
    }

    pub(crate) async fn carry_out(
        &self,
        decision: Decision,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        // Boxed: promotion, its checks and an abort through rollback's restore make a large
        // future, kept off the stack of whatever thread polls it.
        match Box::pin(self.carry_out_once(decision, s)).await {
            // Rollback acted while this step ran: whatever this step wrote does not survive it.
            Err(Failure::RolledBack(why)) => {
                // Production already whole (rollback's restore): nothing to restore again.
                let restore = !matches!(self.read_traffic().await, Ok(Traffic::Canary(0)));
                Box::pin(self.abort(why, Why::Rollback, restore, s)).await
            }
            Err(Failure::Alarmed(why)) => Box::pin(self.abort(why, Why::Alarm, true, s)).await,
            // Traffic moved under the step (a rollback while the checks ran): never written over.
            Err(Failure::Changed(traffic)) => match plan::changed_outside(
                &traffic,
                &format!("while step {} was being written", s.step),
            ) {
                Decision::Abort {
                    reason,
                    why,
                    restore,
                } => self.abort(reason, why, restore, s).await,
                _ => unreachable!("changed_outside always aborts"),
            },
            other => other,
        }
    }

    pub(crate) async fn carry_out_once(
        &self,
        decision: Decision,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        match decision {
            Decision::Refuse(why) => Err(Failure::Refused(why)),
            Decision::Finished { status, .. } => {
                s.action = Action::Finished;
                s.step = self.marker.as_ref().map_or(0, |m| m.step);
                s.status = if status == Status::Promoted {
                    "promoted"
                } else {
                    "aborted"
                };
                s.reason = Some(format!(
                    "the rollout already ended ({}); nothing was written",
                    s.status
                ));
                Ok(())
            }
            Decision::Wait { step, ms } => {
                s.action = Action::Baking;
                s.step = step;
                set_wait(s, ms);
                Ok(())
            }
            Decision::Abort {
                reason,
                why,
                restore,
            } => self.abort(reason, why, restore, s).await,
            Decision::Promote => Box::pin(self.promote(s)).await,
            Decision::Start => {
                self.check_start().await?;
                // Recorded before the checks: a re-run while they run (or after a crash) is this
                // rollout's, at step 0 — nothing moved.
                self.write(&self.marker(0, Status::Baking)).await?;
                // Claim, then verify: tags have no conditional write, so two executions that both
                // found the target free both write a claim; after a pause longer than a tag write
                // takes, only the last claim is on the target, and the other writes nothing.
                tokio::time::sleep(self.config.claim_settle).await;
                self.still_ours().await?;
                s.step = 0;
                if let Some(set) = &self.plan.checks_before {
                    s.checks = self.run_checks(set, Phase::PreTraffic).await;
                    if let Some(why) = failed(&s.checks) {
                        return self
                            .abort(
                                format!("checks before the first step failed: {why}"),
                                Why::Checks,
                                false,
                                s,
                            )
                            .await;
                    }
                }
                if let Some(why) = self.alarms_now().await? {
                    return self.abort(why, Why::Alarm, false, s).await;
                }
                self.move_to(1, &[0], s).await?;
                s.action = Action::Started;
                Ok(())
            }
            Decision::Move { step } => {
                self.move_to(step, &[self.weight(step - 1), self.weight(step)], s)
                    .await?;
                s.action = Action::Resumed;
                Ok(())
            }
            Decision::Judge { step } => {
                s.step = step;
                if let Some(set) = &self.plan.checks_after {
                    s.checks = self.run_checks(set, Phase::PostTraffic).await;
                    if let Some(why) = failed(&s.checks) {
                        return self
                            .abort(
                                format!(
                                    "checks after step {step} ({}%) failed: {why}",
                                    self.weight(step)
                                ),
                                Why::Checks,
                                true,
                                s,
                            )
                            .await;
                    }
                }
                // The checks took time: the alarms and the restore record are read again before
                // anything moves forward (and the traffic, inside the move).
                self.still_ours().await?;
                if let Some(why) = self.alarms_now().await? {
                    return self.abort(why, Why::Alarm, true, s).await;
                }
                match plan::after_judgement(self.plan, step) {
                    Decision::Move { step } => {
                        self.move_to(step, &[self.weight(step - 1)], s).await?;
                        s.action = Action::Advanced;
                        Ok(())
                    }
                    _ => {
                        self.write(&self.marker(step, Status::Promoting)).await?;
                        Box::pin(self.promote(s)).await
                    }
                }
            }
        }
    }

    /// After each write and promotion action: the restore record, the marker and the alarms.
    pub(crate) async fn watch(&self) -> Result<(), Failure> {
        self.still_ours().await?;
        match self.alarms_now().await? {
            Some(why) => Err(Failure::Alarmed(why)),
            None => Ok(()),
        }
    }

    pub(crate) async fn alarms_now(&self) -> Result<Option<String>, Failure> {
        let (alarming, missing) = crate::notify::alarms_in_alarm(self.clients, &self.plan.alarms)
            .await
            .map_err(Failure::Aws)?;
        let mut all = alarming;
        all.extend(missing.into_iter().map(|m| format!("{m} (deleted)")));
        Ok((!all.is_empty()).then(|| format!("alarm(s) in ALARM: {}", all.join(", "))))
    }

    pub(crate) async fn run_checks(&self, set: &CheckSet, phase: Phase) -> Vec<CheckResult> {
        let target = self.check_target();
        let executor = hooks::aws_executor_factory(
            self.clients.hooks.clone(),
            self.clients.http.clone(),
            phase,
        )(target);
        match self
            .checks_deadline
            .within(Duration::ZERO, hooks::runner::run_checks(executor, set, self.redactor))
            .await
        {
            Ok(results) => results,
            Err(late) => vec![CheckResult {
                name: "deadline".into(),
                kind: "watchdog",
                required: true,
                verdict: hooks::checks::Verdict::Failed,
                passed: false,
                attempts: 0,
                latency_ms: 0,
                reason: Some(format!(
                    "the checks did not finish in time to move traffic before the invocation's deadline ({late}); give the function a longer timeout or the checks shorter ones"
                )),
                details: Value::Null,
            }],
        }
    }

    /// Marker `moving` → the step's weights (only from one of `from`) → read back → marker
    /// `baking`. A write that failed with traffic untouched puts step 1's marker back to step 0,
    /// so that the retry can tell it from a rollback's restore.
    pub(crate) async fn move_to(
        &self,
        step: usize,
        from: &[u8],
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        let weight = self.weight(step);
        self.write(&self.marker(step, Status::Moving)).await?;
        let mut allowed = from.to_vec();
        allowed.push(weight);
        let after = match self.write_weights(weight, &allowed).await {
            Ok(after) => after,
            // Only a write call that failed may send step 1 back to step 0 (nothing says it
            // landed, and production has everything): a read-back that disagrees is someone
            // else's write, and aborts.
            Err(Failure::WriteFailed(message)) => {
                if step == 1 {
                    if let Ok(Traffic::Canary(0)) = self.read_traffic().await {
                        self.write(&self.marker(0, Status::Baking)).await?;
                    }
                }
                return Err(Failure::Aws(message));
            }
            Err(e) => return Err(e),
        };
        // The write may have landed after a rollback's restore (a slow or retried call): the
        // restore record says so, and the alarms are read again.
        self.watch().await?;
        self.write(&self.marker(step, Status::Baking)).await?;
        s.step = step;
        s.canary_weight = weight;
        s.after = Some(after);
        set_wait(s, self.plan.steps[step - 1].bake.as_millis() as u64);
        info!(rollout = %self.plan.id, target = %s.target, step, canary_weight = weight, action = "shift", outcome = "written", "traffic moved");
        Ok(())
    }

    /// Lattice: production takes what the canary serves — a Lambda target group (one target) by
    /// moving the production group's alias to the canary's version (the group is never empty),
    /// other groups by registering the canary's targets before deregistering the old ones — then
    /// production gets all traffic back. Alias: the alias is already all on the new version (the
    /// last step); the stable pointer moves. Traffic, alarms and the restore record are read
    /// first and after every promotion action: promotion goes on only while the canary has it
    /// all and nothing restored production since the rollout began; otherwise it is undone
    /// (the production alias or pointer back on `prev`) and the rollout aborts.
    pub(crate) async fn promote(&self, s: &mut StepSummary) -> Result<(), Failure> {
        s.step = self.plan.steps.len();
        let traffic = self.read_traffic().await?;
        self.watch().await?;
        self.promote_target(traffic, s).await
    }

    /// After every promotion action passed: marker `promoted`, the summary says so.
    pub(crate) async fn promoted(&self, s: &mut StepSummary) -> Result<(), Failure> {
        self.write(&self.marker(self.plan.steps.len(), Status::Promoted))
            .await?;
        s.action = Action::Promoted;
        s.status = "promoted";
        s.canary_weight = 0;
        s.wait_ms = None;
        s.wait_seconds = None;
        info!(rollout = %self.plan.id, target = %s.target, action = "promote", outcome = "promoted", "rollout promoted");
        Ok(())
    }

    pub(crate) async fn abort_changed(
        &self,
        traffic: &Traffic,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        let Decision::Abort {
            reason, restore, ..
        } = plan::changed_outside(traffic, "during promotion")
        else {
            unreachable!("changed_outside always aborts")
        };
        self.abort(reason, Why::Promotion, restore, s).await
    }

    /// Before an abort restores production: a promotion that moved production (the production
    /// group's alias, the stable pointer) is moved back to what production was, so that
    /// restoring production never restores the new version.
    pub(crate) async fn undo_promotion(&self) -> Result<(), Failure> {
        let promoting = self
            .marker
            .as_ref()
            .is_some_and(|m| m.status == Status::Promoting)
            || self
                .written
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|m| m.status == Status::Promoting))
                .unwrap_or(false);
        if !promoting {
            return Ok(());
        }
        self.undo_target().await
    }

    /// Production back to 100% through rollback's own restore, verified, then marker `aborted`.
    pub(crate) async fn abort(
        &self,
        reason: String,
        why: Why,
        restore: bool,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        warn!(rollout = %self.plan.id, target = %s.target, reason = %reason, why = why.code(), restore, action = "abort", "aborting the rollout");
        s.reason = Some(reason);
        let step = s.step;
        let with_why = |status| Marker {
            why: Some(why.code().into()),
            ..self.marker(step, status)
        };
        // A promotion that moved production is put back whether or not weights need restoring.
        self.undo_promotion().await?;
        if restore {
            self.write(&with_why(Status::Aborting)).await?;
            let mut report = TargetReport::new(
                self.plan.target.id(),
                vec![format!("rollout:{}", self.plan.id)],
            );
            self.restore_production(&mut report).await?;
            let failed = report.failed();
            s.after = report.after.clone();
            s.restore = Some(report);
            if failed {
                let why = s
                    .restore
                    .as_ref()
                    .and_then(|r| r.error.clone())
                    .unwrap_or_default();
                return Err(Failure::Restore(why));
            }
        }
        self.write(&with_why(Status::Aborted)).await?;
        s.action = Action::Aborted;
        s.status = "aborted";
        s.canary_weight = 0;
        s.wait_ms = None;
        s.wait_seconds = None;
        Ok(())
    }
}

/// The longest the state machine waits before calling again: during a long bake each return
/// re-reads the alarms and the restore record, so an alarm acts within a minute even where
/// rollback is not subscribed to it.
pub const MAX_WAIT_SECONDS: u64 = 60;

pub(crate) fn set_wait(s: &mut StepSummary, ms: u64) {
    s.wait_ms = Some(ms);
    s.wait_seconds = Some(ms.div_ceil(1000).min(MAX_WAIT_SECONDS));
}

pub(crate) fn failed(results: &[CheckResult]) -> Option<String> {
    match hooks::runner::verdict(results) {
        (true, _) => None,
        (false, why) => Some(why.unwrap_or_else(|| "a required check failed".into())),
    }
}
