//! The server's background work, started in one place when it serves: the metrics
//! exporter's upkeep, reloading file-backed state (signing keys, IP lists, GeoIP) and
//! pruning what is past its retention, the writer of decision records, and the audit
//! appender (chaining the inbox, signing checkpoints).

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::app::SharedApp;

/// The running background tasks.
pub struct Background {
    stop_records: Arc<Notify>,
    records: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts every background task of a serving node.
    pub fn start(app: &SharedApp, recorder: PrometheusHandle) -> Self {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                recorder.run_upkeep();
            }
        });
        tokio::spawn(reload_files(app.clone()));
        tokio::spawn(chain_audit(app.clone()));
        let stop_records = Arc::new(Notify::new());
        let records = app.decider.take_record_receiver().map(|rx| {
            tokio::spawn(crate::decisions::write_records(
                app.store.clone(),
                rx,
                app.config.decisions.record_batch,
                stop_records.clone(),
            ))
        });
        Self {
            stop_records,
            records,
        }
    }

    /// After the last request: decisions answered before the shutdown are still
    /// recorded.
    pub async fn stop(self) {
        self.stop_records.notify_one();
        if let Some(writer) = self.records {
            let _ = writer.await;
        }
    }
}

/// How often the appender looks into the audit inbox: the delay before an event has its
/// place in the chain (readers of the log chain what waits first, so they never miss one).
const APPEND_EVERY: Duration = Duration::from_millis(25);
/// How often a time-based checkpoint is considered when nothing was appended.
const CHECKPOINT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The audit appender of this node: chains what requests wrote into the inbox (on
/// PostgreSQL every node's appender takes one lock, so they take turns), then signs the
/// head when a checkpoint is due. A crash loses nothing: the inbox is in the store.
async fn chain_audit(app: SharedApp) {
    let mut checked_at = Instant::now();
    loop {
        tokio::time::sleep(APPEND_EVERY).await;
        let mut appended = 0;
        match app.store.audit_inbox_waiting().await {
            Ok(false) => {}
            Ok(true) => match crate::audit::chain::append_pending(&app.store).await {
                Ok((n, _)) => appended = n,
                Err(e) => tracing::warn!(error = %e, "chaining audit events failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "reading the audit inbox failed"),
        }
        if appended == 0 && checked_at.elapsed() < CHECKPOINT_CHECK_EVERY {
            continue;
        }
        checked_at = Instant::now();
        let keys = app.tokens.keys();
        if let Err(e) =
            crate::audit::chain::checkpoint_if_due(&app.store, &keys, &app.config.audit, app.now())
                .await
        {
            tracing::warn!(error = %format!("{e:#}"), "signing an audit checkpoint failed");
        }
    }
}

/// How often rows past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What is kept, and for how long (the README's "Retention" lists the same): rate-limit
/// windows an hour, sign-in failures a day, wrong step-up answers for the failure
/// window, DPoP replay records until their proof expires, challenges and elevations a
/// day past their expiry (a late poll or an audit lookup still finds them), decision
/// records `decisions.record_retention_days`.
fn retention(app: &crate::app::App, now: i64) -> stepgate_store::Prune {
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    stepgate_store::Prune {
        rate_counters: now - HOUR,
        login_failures: now - app.config.lockout.window_seconds.max(DAY),
        stepup_failures: now - app.limits.window_seconds.max(HOUR),
        dpop_proofs: now,
        challenges: now - DAY,
        elevations: now - DAY,
        decision_records: now - i64::from(app.config.decisions.record_retention_days) * DAY,
    }
}

/// Reloads file-backed state (signing keys, IP lists, GeoIP) when the files change, and
/// on SIGHUP; prunes what is past its retention every minute and on SIGHUP. A bad file
/// keeps the previous contents and is logged.
async fn reload_files(app: SharedApp) {
    let every = Duration::from_secs(
        app.config
            .keys_reload_seconds
            .min(app.config.risk.reload_seconds)
            .max(1),
    );
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last_pruned = None;
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        match app.tokens.reload_if_changed() {
            Ok(true) => tracing::info!(keys = app.tokens.keys().len(), "signing keys reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "signing keys could not be reloaded; keeping the current ones")
            }
        }
        match app.risk_sources.reload_if_changed(forced) {
            Ok(true) => tracing::info!("IP lists and GeoIP database reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "risk sources could not be reloaded; keeping the current ones")
            }
        }
        // Old rows only cost space: pruning once a minute is plenty, and keeps write
        // transactions off every reload tick.
        if forced || last_pruned.is_none_or(|at: Instant| at.elapsed() >= PRUNE_EVERY) {
            last_pruned = Some(Instant::now());
            if let Err(e) = app.store.prune(&retention(&app, app.now())).await {
                tracing::warn!(error = %e, "pruning old rows failed");
            }
        }
    }
}
