//! Decision records: queued off the request path, drained every 50 ms, identical
//! decisions of a session folded into one row with a count, written in batches.

use std::sync::Arc;
use std::time::Duration;

use stepgate_api::DecisionKind;
use stepgate_store::{DecisionRecord, Store};
use tokio::sync::mpsc;

use super::cache::SessionView;

/// A decision waiting to be recorded. It shares what it can with the caches (the
/// session's view, the memoized facts), so queuing one copies nothing.
pub struct PendingRecord {
    pub(super) at: i64,
    pub(super) view: Arc<SessionView>,
    pub(super) decision: DecisionKind,
    pub(super) purpose: Option<String>,
    pub(super) policy_version: i64,
    pub(super) facts: Arc<str>,
}

/// How often the record writer wakes to drain the queue. Waking on a timer instead of
/// on every record keeps cross-thread wake-ups off the decision path.
const RECORD_FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Writes queued decision records every `RECORD_FLUSH_EVERY`: everything queued is
/// folded (identical decisions of a session become one row with a count) and written
/// `batch` rows per transaction. When `stop` fires, closes the queue and writes what is
/// left before returning.
pub async fn write_records(
    store: Store,
    mut rx: mpsc::Receiver<PendingRecord>,
    batch: usize,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut ticker = tokio::time::interval(RECORD_FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drained = Vec::new();
    let mut closing = false;
    loop {
        if !closing {
            closing = tokio::select! {
                _ = ticker.tick() => false,
                () = stop.notified() => {
                    rx.close();
                    true
                }
            };
        }
        // At most one queue's worth per tick, so a writer that falls behind still
        // writes in bounded steps (and the queue, full meanwhile, drops and counts).
        let mut budget = rx.max_capacity();
        while budget > 0
            && let Ok(record) = rx.try_recv()
        {
            drained.push(record);
            budget -= 1;
        }
        if !drained.is_empty() {
            let rows = fold(&mut drained);
            for chunk in rows.chunks(batch.max(1)) {
                write_batch(&store, chunk).await;
            }
        }
        if closing && rx.is_empty() {
            return;
        }
    }
}

/// Folds pending records into rows: identical decisions of a session (same answer,
/// policy version and facts) become one row whose `count` says how many it stands for.
/// Empties `pending`.
pub(super) fn fold(pending: &mut Vec<PendingRecord>) -> Vec<DecisionRecord> {
    // Records from the same cached view and memoized facts share pointers, so most are
    // grouped by comparing addresses; the groups are then merged by content.
    let mut by_pointer: std::collections::HashMap<
        (usize, usize, DecisionKind, &Option<String>, i64),
        usize,
    > = std::collections::HashMap::new();
    let mut groups: Vec<(usize, i64)> = Vec::new();
    for (i, r) in pending.iter().enumerate() {
        let key = (
            Arc::as_ptr(&r.view) as usize,
            Arc::as_ptr(&r.facts) as *const u8 as usize,
            r.decision,
            &r.purpose,
            r.policy_version,
        );
        match by_pointer.get(&key) {
            Some(&g) => groups[g].1 += 1,
            None => {
                by_pointer.insert(key, groups.len());
                groups.push((i, 1));
            }
        }
    }
    drop(by_pointer);
    let mut rows: Vec<DecisionRecord> = Vec::with_capacity(groups.len());
    let mut by_content: std::collections::HashMap<
        (&str, DecisionKind, &Option<String>, i64, &str),
        usize,
    > = std::collections::HashMap::new();
    for (i, count) in groups {
        let r = &pending[i];
        let key = (
            r.view.session.id.as_str(),
            r.decision,
            &r.purpose,
            r.policy_version,
            &*r.facts,
        );
        match by_content.get(&key) {
            Some(&row) => rows[row].count += count,
            None => {
                by_content.insert(key, rows.len());
                rows.push(DecisionRecord {
                    at: r.at,
                    user_id: r.view.session.user_id.clone(),
                    session_id: r.view.session.id.clone(),
                    decision: r.decision.as_str().into(),
                    purpose: r.purpose.clone(),
                    policy_version: r.policy_version,
                    facts: r.facts.to_string(),
                    count,
                });
            }
        }
    }
    drop(by_content);
    pending.clear();
    rows
}

/// Writes one transaction's worth of rows.
pub(super) async fn write_batch(store: &Store, rows: &[DecisionRecord]) {
    let decisions: u64 = rows.iter().map(|r| r.count as u64).sum();
    match store.insert_decision_records(rows).await {
        Ok(()) => {
            metrics::counter!("stepgate_decision_records_written_total").increment(decisions);
        }
        Err(e) => {
            tracing::warn!(error = %e, lost = decisions, "writing decision records failed");
            metrics::counter!("stepgate_decision_records_dropped_total").increment(decisions);
        }
    }
}

#[cfg(test)]
mod tests {
    use stepgate_core::risk::DeviceSignal;
    use stepgate_store::SessionRecord;

    use super::*;
    use crate::risk::signals::UserHistory;

    fn view_of(session: &str) -> Arc<SessionView> {
        let record = SessionRecord {
            id: session.into(),
            user_id: format!("user-of-{session}"),
            created_at: 0,
            auth_time: 0,
            expires_at: 0,
            revoked_at: None,
            ip: "127.0.0.1".into(),
            user_agent: None,
            device_hash: None,
            acr: String::new(),
            amr: String::new(),
            enrollment_required: false,
            risk: None,
            jkt: None,
        };
        Arc::new(SessionView {
            live: record.to_domain(),
            session: record,
            roles: Vec::new(),
            history: UserHistory {
                device: DeviceSignal::Absent,
                previous_login: None,
                countries: Vec::new(),
                ips: Vec::new(),
            },
            elevations: Vec::new(),
        })
    }

    fn pending(view: &Arc<SessionView>, decision: DecisionKind, facts: &Arc<str>) -> PendingRecord {
        PendingRecord {
            at: 100,
            view: view.clone(),
            decision,
            purpose: None,
            policy_version: 1,
            facts: facts.clone(),
        }
    }

    #[test]
    fn identical_decisions_of_a_session_fold_into_one_row_with_a_count() {
        let (a, b) = (view_of("s-a"), view_of("s-b"));
        // The same session seen through a reloaded view: another pointer, same content.
        let a_again = view_of("s-a");
        let read: Arc<str> = r#"{"action":"read"}"#.into();
        let read_again: Arc<str> = r#"{"action":"read"}"#.into();
        let write: Arc<str> = r#"{"action":"write"}"#.into();
        let mut queue = vec![
            pending(&a, DecisionKind::Allow, &read),
            pending(&a, DecisionKind::Allow, &read),
            pending(&a_again, DecisionKind::Allow, &read_again),
            pending(&a, DecisionKind::Deny, &read),
            pending(&a, DecisionKind::Allow, &write),
            pending(&b, DecisionKind::Allow, &read),
            PendingRecord {
                purpose: Some("reports:export".into()),
                ..pending(&a, DecisionKind::Allow, &read)
            },
            PendingRecord {
                policy_version: 2,
                ..pending(&a, DecisionKind::Allow, &read)
            },
        ];
        let rows = fold(&mut queue);
        assert!(queue.is_empty());
        type Row<'a> = (&'a str, &'a str, Option<&'a str>, i64, &'a str, i64);
        let summary: Vec<Row> = rows
            .iter()
            .map(|r| {
                (
                    r.session_id.as_str(),
                    r.decision.as_str(),
                    r.purpose.as_deref(),
                    r.policy_version,
                    r.facts.as_str(),
                    r.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("s-a", "allow", None, 1, r#"{"action":"read"}"#, 3),
                ("s-a", "deny", None, 1, r#"{"action":"read"}"#, 1),
                ("s-a", "allow", None, 1, r#"{"action":"write"}"#, 1),
                ("s-b", "allow", None, 1, r#"{"action":"read"}"#, 1),
                (
                    "s-a",
                    "allow",
                    Some("reports:export"),
                    1,
                    r#"{"action":"read"}"#,
                    1
                ),
                ("s-a", "allow", None, 2, r#"{"action":"read"}"#, 1),
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.user_id == format!("user-of-{}", r.session_id))
        );
    }
}
