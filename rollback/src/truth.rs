//! One truth about production, shared by rollback and `shift` (the crate beside it).
//!
//! Three writers move traffic: CodeDeploy, rollback and `shift`. Each leaves what it knows on the
//! target, in AWS, where the others read it before they write:
//! - the **rollout marker** (`shiftguard:rollout`, on the Lattice listener; `shiftguard:rollout:ALIAS`
//!   on the function): which rollout is moving this target, from which production (`stable`,
//!   `prev`), since when (`start`) and where it stands. `shift` writes it; rollback reads it before
//!   anything else, so that a rollout's production wins over any inference.
//! - the **restore record** (`shiftguard:restored`, `shiftguard:restored:ALIAS`): when rollback acted
//!   on the target, for which alarm (and its time), and the production it restored. Rollback writes
//!   it *before* its restoring write (in parallel with its first read), so any write that lands
//!   after rollback's restore finds a record newer than itself: `shift` reads it after each of its
//!   own writes and aborts its rollout when a restore is newer than the rollout's start.
//!
//! Tags have no conditional write; the record and the read-backs are what make read-then-write
//! safe enough (rollback/README.md#never-fights-rollback-one-truth-about-production gives the
//! windows that remain).

use std::collections::HashMap;

use serde::Serialize;
use shiftguard_common::error_text;

use crate::Clients;

/// Tag key of the rollout marker (suffixed with `:ALIAS` on a function, which may carry several
/// aliases).
pub const MARKER_KEY: &str = "shiftguard:rollout";
/// Tag key of the restore record (suffixed with `:ALIAS` on a function).
pub const RECORD_KEY: &str = "shiftguard:restored";
/// How much later than the alarm's state change something (a deployment, a rollout) must have
/// started to be judged not what the alarm is about: the two times come from different services'
/// clocks and may be rounded (to the second, in some notifications). A late retry of an alarm
/// arrives minutes later.
pub const STALE_AFTER_MS: i64 = 2_000;
/// How long after a rollout's promotion an alarm still puts its previous production back.
pub const PROMOTED_WATCH_MS: i64 = 60 * 60 * 1000;

pub fn marker_key(alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("{MARKER_KEY}:{a}"),
        None => MARKER_KEY.into(),
    }
}

pub fn record_key(alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("{RECORD_KEY}:{a}"),
        None => RECORD_KEY.into(),
    }
}

// ---- the rollout marker ------------------------------------------------------------------------

/// Where a rollout stands, kept as a tag on its target (the Lattice listener, or the function for
/// an alias) so that the state lives in AWS: a re-run, a new execution, rollback or a person reads
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub id: String,
    /// 1-based step; 0 before the first.
    pub step: usize,
    /// The canary weight this step sets.
    pub weight: u8,
    /// When the status was written (ms since the epoch): a bake counts from here.
    pub at_ms: i64,
    pub status: Status,
    /// Alias rollouts: the version production is on (what an abort restores).
    pub stable: Option<String>,
    /// Why an abort began (a short code), so that a resumed abort still says why.
    pub why: Option<String>,
    /// The ended rollout's summary reached `NOTIFY_TOPIC_ARN` (a re-run publishes it otherwise).
    pub notified: bool,
    /// When the rollout claimed the target (ms since the epoch). A restore record newer than this
    /// ends the rollout. Markers written before this field existed have none.
    pub start_ms: Option<i64>,
    /// Lattice promotions through an alias: the version the production alias was on before.
    pub prev: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// About to write this step's weights (a crash here is resumed by writing them again).
    Moving,
    /// This step's weights are written and verified; baking since `at`.
    Baking,
    /// Final checks passed; making the new version production.
    Promoting,
    Promoted,
    /// Restoring production (resumed by restoring again).
    Aborting,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Moving => "moving",
            Status::Baking => "baking",
            Status::Promoting => "promoting",
            Status::Promoted => "promoted",
            Status::Aborting => "aborting",
            Status::Aborted => "aborted",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "moving" => Status::Moving,
            "baking" => Status::Baking,
            "promoting" => Status::Promoting,
            "promoted" => Status::Promoted,
            "aborting" => Status::Aborting,
            "aborted" => Status::Aborted,
            _ => return None,
        })
    }
    pub fn finished(self) -> bool {
        matches!(self, Status::Promoted | Status::Aborted)
    }
}

impl Marker {
    /// A marker of rollout `id` at `step` (the canary's `weight`) in `status`, written at `at_ms`;
    /// nothing else recorded yet (no stable version, reason, start or previous version).
    pub fn new(id: impl Into<String>, step: usize, weight: u8, status: Status, at_ms: i64) -> Self {
        Marker {
            id: id.into(),
            step,
            weight,
            at_ms,
            status,
            stable: None,
            why: None,
            notified: false,
            start_ms: None,
            prev: None,
        }
    }

    /// A tag value: space-separated `key=value` pairs (the characters AWS tag values allow).
    pub fn encode(&self) -> String {
        let mut s = format!(
            "id={} step={} weight={} at={} status={}",
            self.id,
            self.step,
            self.weight,
            self.at_ms,
            self.status.as_str()
        );
        if let Some(v) = &self.stable {
            s.push_str(&format!(" stable={v}"));
        }
        if let Some(w) = &self.why {
            s.push_str(&format!(" why={w}"));
        }
        if self.notified {
            s.push_str(" notified=1");
        }
        if let Some(t) = self.start_ms {
            s.push_str(&format!(" start={t}"));
        }
        if let Some(p) = &self.prev {
            s.push_str(&format!(" prev={p}"));
        }
        s
    }

    /// `None` when the tag is not a marker this version of ShiftGuard wrote.
    pub fn decode(raw: &str) -> Option<Marker> {
        let mut m = Marker::new("", 0, 0, Status::Moving, 0);
        let (mut id, mut status) = (false, false);
        for pair in raw.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            match k {
                "id" => {
                    m.id = v.to_string();
                    id = !v.is_empty();
                }
                "step" => m.step = v.parse().ok()?,
                "weight" => m.weight = v.parse().ok().filter(|w| *w <= 100)?,
                "at" => m.at_ms = v.parse().ok()?,
                "status" => {
                    m.status = Status::parse(v)?;
                    status = true;
                }
                "stable" => m.stable = Some(v.to_string()),
                "why" => m.why = Some(v.to_string()),
                "notified" => m.notified = v == "1",
                "start" => m.start_ms = Some(v.parse().ok()?),
                "prev" => m.prev = Some(v.to_string()),
                _ => {}
            }
        }
        (id && status).then_some(m)
    }

    /// When the rollout began: `start`, or (an older marker) nothing earlier is known.
    pub fn started_ms(&self) -> i64 {
        self.start_ms.unwrap_or(i64::MIN)
    }
}

/// The production a rollback must put back when a rollout's promotion moved it (a Lattice
/// production group's alias): during the promotion, and after it for an alarm (or request) that
/// is not older than the promotion, within [`PROMOTED_WATCH_MS`]. Pure.
pub fn production_before(rollout: &Marker, alarm_ms: Option<i64>) -> Option<&str> {
    let prev = rollout.prev.as_deref()?;
    match rollout.status {
        Status::Promoting => Some(prev),
        Status::Promoted => {
            let alarm = alarm_ms?;
            (alarm >= rollout.at_ms.saturating_sub(STALE_AFTER_MS)
                && alarm <= rollout.at_ms.saturating_add(PROMOTED_WATCH_MS))
            .then_some(prev)
        }
        _ => None,
    }
}

/// Whether an alarm (or request) at `alarm_ms` is older than a rollout still in progress: a late
/// delivery that is not about it. Pure; the alias decision and the listener's restore share it.
pub fn began_after(rollout: &Marker, alarm_ms: Option<i64>) -> bool {
    match (alarm_ms, rollout.start_ms) {
        (Some(alarm), Some(start)) => {
            !rollout.status.finished() && start > alarm.saturating_add(STALE_AFTER_MS)
        }
        _ => false,
    }
}

// ---- the restore record ------------------------------------------------------------------------

/// What rollback leaves on a target it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    /// When rollback acted (ms since the epoch): written before its restoring write.
    pub at_ms: i64,
    /// When the alarm changed state, or the operator asked (ms since the epoch).
    pub alarm_ms: i64,
    /// The alarm(s), or `operator:NAME`, tag-safe and shortened.
    pub by: String,
    /// The production rollback restored (a version, or the production target group), once known.
    pub production: Option<String>,
}

/// Tag values: at most 256 characters of letters, digits, spaces and `_ . : / = + - @`.
pub fn tag_safe(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:/+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(max);
    out
}

impl RestoreRecord {
    pub fn encode(&self) -> String {
        let mut s = format!("at={} alarm={}", self.at_ms, self.alarm_ms);
        if let Some(p) = &self.production {
            s.push_str(&format!(" production={}", tag_safe(p, 80)));
        }
        s.push_str(&format!(" by={}", tag_safe(&self.by, 100)));
        s
    }

    pub fn decode(raw: &str) -> Option<RestoreRecord> {
        let mut r = RestoreRecord {
            at_ms: 0,
            alarm_ms: 0,
            by: String::new(),
            production: None,
        };
        let (mut at, mut alarm) = (false, false);
        for pair in raw.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            match k {
                "at" => {
                    r.at_ms = v.parse().ok()?;
                    at = true;
                }
                "alarm" => {
                    r.alarm_ms = v.parse().ok()?;
                    alarm = true;
                }
                "production" => r.production = Some(v.to_string()),
                "by" => r.by = v.to_string(),
                _ => {}
            }
        }
        (at && alarm).then_some(r)
    }

    /// Whether this restore ends `rollout`: rollback acted after the rollout began, for an alarm
    /// (or request) that is not older than the rollout (a late delivery of an old alarm is not
    /// about it). Pure.
    pub fn ends(&self, rollout: &Marker) -> bool {
        let start = rollout.started_ms();
        self.at_ms >= start && self.alarm_ms >= start.saturating_sub(STALE_AFTER_MS)
    }
}

// ---- where the tags live -----------------------------------------------------------------------

/// The partition, region and account this function runs in (from its own ARN, which every
/// invocation carries): enough to name a target's ARN without a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Home {
    /// From `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    pub fn from_function_arn(arn: &str) -> Option<Home> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "lambda", region, account, "function", ..]
                if !partition.is_empty() && !region.is_empty() && account.len() == 12 =>
            {
                Some(Home {
                    partition: partition.to_string(),
                    region: region.to_string(),
                    account: account.to_string(),
                })
            }
            _ => None,
        }
    }

    /// An unqualified function ARN for a name (an ARN is kept, less any qualifier).
    pub fn function_arn(&self, function: &str) -> String {
        if function.starts_with("arn:") {
            return unqualified_function_arn(function);
        }
        format!(
            "arn:{}:lambda:{}:{}:function:{function}",
            self.partition, self.region, self.account
        )
    }

    /// A listener ARN from service and listener ids (ARNs are kept).
    pub fn listener_arn(&self, service: &str, listener: &str) -> String {
        if listener.starts_with("arn:") {
            return listener.to_string();
        }
        let service_id = service.rsplit('/').next().unwrap_or(service);
        format!(
            "arn:{}:vpc-lattice:{}:{}:service/{service_id}/listener/{listener}",
            self.partition, self.region, self.account
        )
    }
}

/// `arn:…:function:NAME` from a function, version or alias ARN.
pub fn unqualified_function_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() > 7 && parts[5] == "function" {
        parts[..7].join(":")
    } else {
        arn.to_string()
    }
}

/// A resource that carries ShiftGuard's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// An unqualified function ARN (Lambda tags functions, not aliases).
    Function(String),
    /// A Lattice listener ARN.
    Listener(String),
}

impl Tagged {
    pub fn arn(&self) -> &str {
        match self {
            Tagged::Function(a) | Tagged::Listener(a) => a,
        }
    }

    /// Every tag. `Err` says why they could not be read. (The SDK's futures are boxed here and
    /// below: see `shiftguard_common::lambda`.)
    pub async fn read(&self, clients: &Clients) -> Result<HashMap<String, String>, String> {
        match self {
            Tagged::Function(arn) => Box::pin(clients.lambda.list_tags().resource(arn).send())
                .await
                .map(|o| o.tags.unwrap_or_default())
                .map_err(|e| format!("ListTags({arn}) failed: {}", error_text(&e))),
            Tagged::Listener(arn) => Box::pin(
                clients
                    .lattice()
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send(),
            )
            .await
            .map(|o| o.tags.unwrap_or_default())
            .map_err(|e| format!("ListTagsForResource({arn}) failed: {}", error_text(&e))),
        }
    }

    pub async fn tag(&self, clients: &Clients, key: &str, value: &str) -> Result<(), String> {
        match self {
            Tagged::Function(arn) => Box::pin(
                clients
                    .lambda
                    .tag_resource()
                    .resource(arn)
                    .tags(key, value)
                    .send(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("TagResource({arn}) failed: {}", error_text(&e))),
            Tagged::Listener(arn) => Box::pin(
                clients
                    .lattice()
                    .tag_resource()
                    .resource_arn(arn)
                    .tags(key, value)
                    .send(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("TagResource({arn}) failed: {}", error_text(&e))),
        }
    }
}

/// What ShiftGuard's tags on a target say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagFacts {
    /// The rollout marker (`Err`: a tag that is not a marker this version wrote).
    pub marker: Option<Result<Marker, String>>,
    /// The last restore record (an unreadable one is `None`, with a note).
    pub record: Option<RestoreRecord>,
}

impl TagFacts {
    pub fn from_tags(tags: &HashMap<String, String>, alias: Option<&str>) -> TagFacts {
        TagFacts {
            marker: tags
                .get(&marker_key(alias))
                .map(|raw| Marker::decode(raw).ok_or_else(|| raw.clone())),
            record: tags
                .get(&record_key(alias))
                .and_then(|raw| RestoreRecord::decode(raw)),
        }
    }

    /// The marker, when it is one.
    pub fn rollout(&self) -> Option<&Marker> {
        self.marker.as_ref().and_then(|m| m.as_ref().ok())
    }
}

/// The restore record rollback is about to leave: written before its restoring write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub alarm_ms: i64,
    pub by: String,
}

impl Intent {
    pub fn record(&self, production: Option<String>) -> RestoreRecord {
        RestoreRecord {
            at_ms: shiftguard_common::emf::now_ms(),
            alarm_ms: self.alarm_ms,
            by: self.by.clone(),
            production,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_old_markers_still_read() {
        let m = Marker {
            id: "orders-v2".into(),
            step: 2,
            weight: 50,
            at_ms: 1_700_000_000_000,
            status: Status::Baking,
            stable: Some("7".into()),
            why: None,
            notified: false,
            start_ms: Some(1_699_999_000_000),
            prev: Some("3".into()),
        };
        assert_eq!(Marker::decode(&m.encode()), Some(m));
        let old = Marker::decode("id=r1 step=1 weight=10 at=5 status=moving").unwrap();
        assert_eq!((old.start_ms, old.started_ms()), (None, i64::MIN));
        assert!(Marker::decode("step=1 status=baking").is_none());
    }

    #[test]
    fn a_record_ends_only_the_rollouts_it_is_about() {
        let rollout =
            Marker::decode("id=r1 step=1 weight=10 at=5000 status=baking start=1000").unwrap();
        let rec = |at_ms, alarm_ms| RestoreRecord {
            at_ms,
            alarm_ms,
            by: "a".into(),
            production: None,
        };
        assert!(
            rec(1500, 1200).ends(&rollout),
            "restored during the rollout"
        );
        assert!(!rec(900, 800).ends(&rollout), "restored before it began");
        assert!(
            !rec(9000, -5000).ends(&rollout),
            "a late delivery of an alarm from before the rollout"
        );
        assert!(rec(9000, 0).ends(&rollout), "within the clocks' tolerance");
        let r = rec(9000, 8000);
        assert_eq!(RestoreRecord::decode(&r.encode()), Some(r));
        let named = RestoreRecord {
            production: Some("tg-0abc".into()),
            by: "operator:alice (INC 42!)".into(),
            ..rec(1, 2)
        };
        let text = named.encode();
        assert!(text.len() <= 256 && !text.contains('!'), "{text}");
        assert_eq!(
            RestoreRecord::decode(&text).unwrap().production.as_deref(),
            Some("tg-0abc")
        );
    }

    #[test]
    fn a_promotion_is_put_back_while_it_runs_and_for_an_hour_after() {
        let m = |status: &str| {
            Marker::decode(&format!(
                "id=r1 step=3 weight=100 at=10000 status={status} start=1000 prev=4"
            ))
            .unwrap()
        };
        assert_eq!(production_before(&m("promoting"), None), Some("4"));
        assert_eq!(production_before(&m("promoted"), Some(10_500)), Some("4"));
        assert_eq!(
            production_before(&m("promoted"), Some(9_000)),
            Some("4"),
            "clock tolerance"
        );
        assert_eq!(
            production_before(&m("promoted"), Some(5_000)),
            None,
            "an alarm from before the promotion"
        );
        assert_eq!(
            production_before(&m("promoted"), Some(10_000 + PROMOTED_WATCH_MS + 1)),
            None
        );
        assert_eq!(production_before(&m("promoted"), None), None);
        assert_eq!(production_before(&m("baking"), Some(10_500)), None);
    }

    #[test]
    fn arns_come_from_the_functions_own() {
        let home = Home::from_function_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:rb")
            .unwrap();
        assert_eq!(
            home.function_arn("orders"),
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders"
        );
        assert_eq!(
            home.function_arn("arn:aws:lambda:us-east-1:111122223333:function:orders:live"),
            "arn:aws:lambda:us-east-1:111122223333:function:orders"
        );
        assert_eq!(
            home.listener_arn("svc-1", "listener-2"),
            "arn:aws-cn:vpc-lattice:cn-north-1:123456789012:service/svc-1/listener/listener-2"
        );
        assert!(Home::from_function_arn("arn:aws:lambda:us-east-1:12:function:x").is_none());
    }
}
