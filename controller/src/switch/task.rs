//! One switch's sync loop: connect, become primary, make sure the pipeline
//! is there, then keep writing the difference to the latest desired state.
//! One task per switch, so a slow or dead switch holds up no other.
//!
//! The task follows a `watch` of the desired state, so it always converges
//! to the latest generation and skips intermediate ones it was too slow
//! for. What it knows about the switch is either "holds exactly generation
//! g" (after a successful sync) or nothing; knowing nothing, it reads the
//! tables back and reconciles. It forgets what it knew after a rejected
//! write, a new session (reconnect, switch restart), a pipeline push, a
//! lost primary status, and every `resync_interval`.

use super::client::{Client, StreamEvent, SwitchError, pipeline_cookie};
use super::{SwitchCounters, SwitchStatus, SyncState, unix_ms};
use crate::backoff::Backoff;
use crate::config::{ControllerSettings, SwitchSpec};
use crate::plan::{self, Desired, Installed, Plan};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The drop counter is read every this many probes.
const DROPS_EVERY: u32 = 10;

/// A running switch task: its status and counters.
#[derive(Debug)]
pub struct SwitchHandle {
    /// Its name.
    pub name: String,
    /// Its status, updated on every change.
    pub status: watch::Receiver<SwitchStatus>,
    /// Its counters.
    pub counters: Arc<SwitchCounters>,
    /// The task.
    pub task: JoinHandle<()>,
}

impl Drop for SwitchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the task of one switch, following `desired`.
pub fn spawn(
    spec: SwitchSpec,
    settings: ControllerSettings,
    desired: watch::Receiver<Arc<Desired>>,
) -> SwitchHandle {
    let status = SwitchStatus {
        name: spec.name.clone(),
        address: spec.address.clone(),
        target: spec.target,
        state: SyncState::Connecting,
        holds_generation: None,
        since_ms: unix_ms(),
        last_error: None,
    };
    let (status_tx, status_rx) = watch::channel(status);
    let counters = Arc::new(SwitchCounters::default());
    let seed = spec.name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        h.rotate_left(5) ^ u64::from(b)
    });
    let task = Task {
        cookie: pipeline_cookie(&spec),
        backoff: Backoff::new(settings.backoff_initial, settings.backoff_max, seed),
        spec: spec.clone(),
        settings,
        desired,
        status: status_tx,
        counters: counters.clone(),
    };
    let span = tracing::info_span!("switch", name = %spec.name, addr = %spec.address);
    let task = tokio::spawn(tracing::Instrument::instrument(task.run(), span));
    SwitchHandle {
        name: spec.name,
        status: status_rx,
        counters,
        task,
    }
}

struct Task {
    spec: SwitchSpec,
    settings: ControllerSettings,
    desired: watch::Receiver<Arc<Desired>>,
    status: watch::Sender<SwitchStatus>,
    counters: Arc<SwitchCounters>,
    cookie: u64,
    backoff: Backoff,
}

/// An open stream channel; closing it (drop) gives up primary status.
struct Session {
    client: Client,
    arbiter: super::client::Arbiter,
    events: mpsc::Receiver<StreamEvent>,
}

impl Task {
    fn set_state(&self, state: SyncState, generation: Option<Option<u32>>, error: Option<String>) {
        self.status.send_modify(|s| {
            if s.state != state {
                s.since_ms = unix_ms();
            }
            s.state = state;
            if let Some(g) = generation {
                s.holds_generation = g;
            }
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    async fn run(mut self) {
        loop {
            let end = self.session().await;
            SwitchCounters::add(&self.counters.rpc_errors, 1);
            let delay = self.backoff.next_delay();
            let msg = end.to_string();
            let state = match &end {
                SwitchError::PipelineRejected(_) => {
                    tracing::error!(error = %msg, "the switch rejected the pipeline; retrying in {delay:?}");
                    SyncState::OutOfSync {
                        error: msg.clone(),
                        retry_in_ms: delay.as_millis() as u64,
                    }
                }
                SwitchError::NotPrimary(detail) => {
                    tracing::warn!(error = %msg, "not primary; retrying in {delay:?}");
                    SyncState::NotPrimary {
                        detail: detail.clone(),
                    }
                }
                _ => {
                    if self.backoff.attempts() <= 1 {
                        tracing::warn!(error = %msg, "switch unreachable; retrying in {delay:?}");
                    } else {
                        tracing::debug!(error = %msg, attempts = self.backoff.attempts(), "still unreachable; retrying in {delay:?}");
                    }
                    SyncState::Unreachable {
                        error: end.detail().to_string(),
                        attempts: self.backoff.attempts(),
                        retry_in_ms: delay.as_millis() as u64,
                    }
                }
            };
            // What the switch holds is unknown until the next session
            // reads it back.
            self.set_state(state, Some(None), Some(msg));
            tokio::time::sleep(delay).await;
        }
    }

    /// One connection's life; returns why it ended.
    async fn session(&mut self) -> SwitchError {
        match self.session_inner().await {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    async fn session_inner(&mut self) -> Result<std::convert::Infallible, SwitchError> {
        let s = &self.settings;
        let mut client =
            Client::connect(&self.spec, s.election_id, s.connect_timeout, s.rpc_timeout).await?;
        let (arbiter, events) = client.open_stream().await?;
        SwitchCounters::add(&self.counters.sessions, 1);
        let mut session = Session {
            client,
            arbiter,
            events,
        };
        self.wait_primary(&mut session).await?;
        self.ensure_pipeline(&mut session.client, false).await?;

        let mut known: Option<Arc<Desired>> = None;
        let mut probe = tokio::time::interval(self.settings.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.tick().await;
        let resync_every = self.settings.resync_interval.unwrap_or(Duration::MAX);
        let mut next_resync = Instant::now().checked_add(resync_every);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut ticks = 0u32;
        loop {
            let target = self.desired.borrow_and_update().clone();
            let stale = known.as_ref().is_none_or(|k| !Arc::ptr_eq(k, &target));
            let may_try = retry_at.is_none_or(|t| tokio::time::Instant::now() >= t);
            if stale && may_try {
                match self
                    .sync(&mut session.client, known.as_deref(), &target)
                    .await
                {
                    Ok(()) => {
                        known = Some(target.clone());
                        retry_at = None;
                        self.backoff.reset();
                        self.set_state(
                            SyncState::InSync {
                                generation: target.generation,
                            },
                            Some(Some(target.generation)),
                            None,
                        );
                    }
                    Err(SwitchError::Rejected(e)) => {
                        SwitchCounters::add(&self.counters.rejected_writes, 1);
                        known = None;
                        let delay = self.backoff.next_delay();
                        retry_at = Some(tokio::time::Instant::now() + delay);
                        tracing::error!(generation = target.generation, error = %e, "write rejected; the switch is out of sync, reconciling in {delay:?}");
                        let error = format!("write rejected: {e}");
                        self.set_state(
                            SyncState::OutOfSync {
                                error: error.clone(),
                                retry_in_ms: delay.as_millis() as u64,
                            },
                            Some(None),
                            Some(error),
                        );
                    }
                    Err(SwitchError::NoPipeline(e)) => {
                        tracing::warn!(error = %e, "the switch lost its pipeline; pushing it again");
                        known = None;
                        self.ensure_pipeline(&mut session.client, true).await?;
                        continue;
                    }
                    Err(SwitchError::NotPrimary(e)) => {
                        tracing::warn!(error = %e, "lost primary status; asking again");
                        known = None;
                        session.arbiter.request_primary().await?;
                        self.wait_primary(&mut session).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }

            let retry = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let resync = async {
                match next_resync {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The controller is shutting down.
                        std::future::pending::<()>().await;
                    }
                    // A new desired state may fix what was rejected.
                    retry_at = None;
                }
                ev = session.events.recv() => match ev {
                    Some(StreamEvent::Primary) => {}
                    Some(StreamEvent::Backup(m)) => {
                        tracing::warn!(detail = %m, "lost primary status; asking again");
                        known = None;
                        self.set_state(SyncState::NotPrimary { detail: m }, None, None);
                        session.arbiter.request_primary().await?;
                        self.wait_primary(&mut session).await?;
                    }
                    Some(StreamEvent::Closed(m)) => return Err(SwitchError::Unreachable(m)),
                    None => return Err(SwitchError::Unreachable("stream reader ended".into())),
                },
                _ = probe.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks % DROPS_EVERY == 0 {
                        match session.client.read_drops().await {
                            Ok(d) => {
                                if let Ok(mut m) = self.counters.drops.lock() {
                                    *m = d;
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "drop counter not read"),
                        }
                    }
                    match session.client.pipeline_cookie().await {
                        Ok(Some(c)) if c == self.cookie => {}
                        Ok(other) => {
                            tracing::warn!(cookie = ?other, "the switch runs another pipeline; pushing ours");
                            known = None;
                            self.ensure_pipeline(&mut session.client, true).await?;
                        }
                        Err(SwitchError::NoPipeline(e)) => {
                            tracing::warn!(error = %e, "the switch lost its pipeline; pushing it again");
                            known = None;
                            self.ensure_pipeline(&mut session.client, true).await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ = retry => {}
                _ = resync => {
                    tracing::debug!("periodic read-back");
                    known = None;
                    next_resync = Instant::now().checked_add(resync_every);
                }
            }
        }
    }

    /// Waits until the switch says we are primary, asking again with
    /// backoff while another controller is.
    async fn wait_primary(&mut self, session: &mut Session) -> Result<(), SwitchError> {
        let mut ask = Backoff::new(
            self.settings.backoff_initial,
            self.settings.backoff_max,
            self.cookie,
        );
        let mut first = true;
        loop {
            let wait = if first {
                self.settings.rpc_timeout
            } else {
                ask.next_delay()
            };
            match tokio::time::timeout(wait, session.events.recv()).await {
                Ok(Some(StreamEvent::Primary)) => {
                    if !first {
                        tracing::info!("primary again");
                    } else {
                        tracing::debug!("primary");
                    }
                    return Ok(());
                }
                Ok(Some(StreamEvent::Backup(m))) => {
                    if first {
                        tracing::warn!(detail = %m, "another controller is primary; waiting");
                    }
                    self.set_state(SyncState::NotPrimary { detail: m }, Some(None), None);
                    first = false;
                }
                Ok(Some(StreamEvent::Closed(m))) => return Err(SwitchError::Unreachable(m)),
                Ok(None) => return Err(SwitchError::Unreachable("stream reader ended".into())),
                Err(_) if first => {
                    return Err(SwitchError::Unreachable(
                        "no arbitration answer on the stream channel".into(),
                    ));
                }
                Err(_) => session.arbiter.request_primary().await?,
            }
        }
    }

    /// Makes sure the switch runs our pipeline: pushes it when the switch
    /// has none, runs another, or `force`.
    async fn ensure_pipeline(
        &mut self,
        client: &mut Client,
        force: bool,
    ) -> Result<(), SwitchError> {
        if !force {
            match client.pipeline_cookie().await {
                Ok(Some(c)) if c == self.cookie => {
                    tracing::debug!("pipeline in place");
                    return Ok(());
                }
                Ok(other) => {
                    tracing::info!(cookie = ?other, "the switch runs another pipeline (or one without our cookie)")
                }
                Err(SwitchError::NoPipeline(_)) => tracing::info!("the switch has no pipeline"),
                Err(e) => return Err(e),
            }
        }
        let started = Instant::now();
        client.set_pipeline(&self.spec, self.cookie).await?;
        SwitchCounters::add(&self.counters.pipeline_pushes, 1);
        tracing::info!(
            p4info = %self.spec.p4info_source,
            device_config = ?self.spec.device_config,
            elapsed = ?started.elapsed(),
            "pipeline pushed"
        );
        Ok(())
    }

    /// Brings the switch from what is known of it (or what it reports) to
    /// `target`.
    async fn sync(
        &mut self,
        client: &mut Client,
        known: Option<&Desired>,
        target: &Desired,
    ) -> Result<(), SwitchError> {
        let started = Instant::now();
        self.set_state(
            SyncState::Syncing {
                towards: target.generation,
            },
            None,
            None,
        );
        let (plan, how) = match known {
            Some(k) => match plan::incremental(k, target) {
                Some(p) => (p, "allocator diff"),
                None => (
                    plan::reconcile(&Installed::from_desired(k), target),
                    "diff of generations",
                ),
            },
            None => {
                SwitchCounters::add(&self.counters.reconciles, 1);
                let installed = client.read_installed().await?;
                tracing::debug!(
                    entries = installed.entries.len(),
                    config = ?installed.config,
                    "read back"
                );
                (plan::reconcile(&installed, target), "read back")
            }
        };
        let n = plan.len();
        self.write_plan(client, &plan).await?;
        if n > 0 {
            tracing::info!(
                generation = target.generation,
                updates = n,
                how,
                elapsed = ?started.elapsed(),
                "in sync"
            );
        }
        Ok(())
    }

    async fn write_plan(&mut self, client: &mut Client, plan: &Plan) -> Result<(), SwitchError> {
        write_plan(client, plan, self.settings.write_batch, &self.counters).await
    }
}

/// Writes `plan` in order, each batch in `WriteRequest`s of at most
/// `chunk` updates, a few of them in flight at once (the updates of one
/// batch are independent); counts what was acknowledged.
pub async fn write_plan(
    client: &Client,
    plan: &Plan,
    chunk: usize,
    counters: &SwitchCounters,
) -> Result<(), SwitchError> {
    let count = |r: Result<Result<usize, SwitchError>, tokio::task::JoinError>| match r {
        Ok(Ok(n)) => {
            SwitchCounters::add(&counters.updates, n as u64);
            SwitchCounters::add(&counters.write_requests, 1);
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(SwitchError::Protocol(format!("write task failed: {e}"))),
    };
    for batch in &plan.batches {
        let mut in_flight = tokio::task::JoinSet::new();
        for part in batch.chunks(chunk.max(1)) {
            if in_flight.len() >= 4
                && let Some(r) = in_flight.join_next().await
            {
                count(r)?;
            }
            let mut c = client.clone();
            let part = part.to_vec();
            in_flight.spawn(async move {
                let n = part.len();
                c.write(&part).await.map(|()| n)
            });
        }
        while let Some(r) = in_flight.join_next().await {
            count(r)?;
        }
    }
    Ok(())
}
