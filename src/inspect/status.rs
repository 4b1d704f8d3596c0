//! `everynode status`: a DaemonSet's rollout status that cannot hang. It waits until the rollout is
//! complete or cannot progress, printing kubectl's progress line and the nodes still to do whenever
//! they change, and ends by its deadlines whatever the cluster does.
//!
//! The verdict is [`crate::core::rollout_status`]'s, on snapshots read with the user's kubeconfig
//! ([`super::snapshot`]). A snapshot is read at the start, again shortly after a watch on the
//! DaemonSet or its pods reports a change (debounced, at most one read every
//! [`MIN_READ_INTERVAL`]), at the moment a deadline of the verdict falls due, and at least every
//! [`RESYNC`] (node changes are not watched; a watch that fails or is forbidden is only a lost
//! shortcut). Every read is bounded by [`READ_TIMEOUT`] and by the time left; its requests by the
//! client's per-attempt timeout. Transient API errors (no answer, 429, 5xx) are retried every
//! [`RETRY_INTERVAL`] until `--timeout`, or until nothing could be read for the progress deadline.

use super::InspectError;
use super::connect::Connection;
use super::snapshot::Snapshot;
use crate::core::Timestamp;
use crate::core::rollout_status::{
    FAILURE_GRACE, Limits, Progress, Step, Verdict, human_duration, observe_with_rollout,
    settling_nodes, verdict_with_rollout,
};
use crate::runtime::cli::{TargetArgs, parse_duration};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::SignedDuration;
use std::future::Future;
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// The rollout is complete (DESIRED 0 included, with a warning).
pub const EXIT_COMPLETE: u8 = 0;
/// The rollout cannot progress; the reason is printed.
pub const EXIT_CANNOT_PROGRESS: u8 = 1;
/// `--timeout` passed (clap's usage errors exit 2 as well).
pub const EXIT_TIMEOUT: u8 = 2;
/// `--watch=false` only: the rollout is still progressing.
pub const EXIT_PROGRESSING: u8 = 3;
/// The DaemonSet could not be read: it or its namespace does not exist, the kubeconfig or the
/// credentials are refused, or the API server did not answer for the progress deadline.
pub const EXIT_UNREADABLE: u8 = 4;

/// The exit codes, for `everynode status --help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  the rollout is complete (with a warning line when the DaemonSet selects no node: DESIRED 0),
     or complete as its DaemonSetRollout allows (the other nodes held by its partition or outside
     its updateScope)
  1  the rollout cannot progress: new pods the scheduler cannot place, crash-looping, failing to
     pull their image or failed (seen for 5s), or no progress for --progress-deadline (also while
     a DaemonSetRollout pauses, freezes or waits for approval); or its DaemonSetRollout is Failed,
     exceeded its progressDeadlineSeconds, or RolledBack the template
  2  --timeout passed; also a usage error (an unknown flag, a bad duration or target)
  3  --watch=false only: the rollout is still progressing
  4  the DaemonSet cannot be read: it or its namespace does not exist, the kubeconfig or the
     credentials are refused, or the API server did not answer for --progress-deadline

A rollout is complete as for kubectl rollout status: the controller has observed the current
generation, and every desired pod is updated and available. Pods still unavailable within
maxUnavailable do not complete it (kubernetes#73667): status says they are within the budget and
names their nodes. With updateStrategy OnDelete, outdated pods wait for a manual delete; each delete
is progress, and without one the progress deadline ends the wait. With a DaemonSetRollout (same
name), its phase is read first; a Baking rollout is progress, so a long bake never ends the wait.";

/// How long one snapshot read may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// The wait before reading again after a transient error.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two reads without any change reported.
pub const RESYNC: Duration = Duration::from_secs(10);
/// How long to gather change notifications before reading.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// The shortest time between the starts of two reads.
pub const MIN_READ_INTERVAL: Duration = Duration::from_millis(500);

/// Flags of `everynode status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Wait until the rollout is complete or cannot progress, printing the progress line and the
    /// nodes still to do (with their reasons, at most 5 named) whenever they change.
    /// --watch=false prints the state once and exits (3 if still progressing).
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub watch: bool,

    /// Give up waiting after this long and exit 2 (e.g. 5m). 0: no timeout; the progress deadline
    /// still guarantees an end.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Exit 1 when the rollout has made no progress for this long (as a Deployment's
    /// progressDeadlineSeconds): no pod newly updated or available, no change of DESIRED, the
    /// spec not observed. The clock starts when status starts; flapping pods do not reset it.
    #[arg(long, default_value = "10m", value_parser = parse_deadline, value_name = "DURATION")]
    pub progress_deadline: Duration,
}

/// Parses `--progress-deadline`: a duration above 0.
pub fn parse_deadline(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} must be more than 0"));
    }
    Ok(d)
}

/// What the loop needs of `StatusArgs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub watch: bool,
    /// `None`: no timeout.
    pub timeout: Option<Duration>,
    pub progress_deadline: Duration,
}

/// Where snapshots come from: the cluster, or a script in tests.
pub trait Source {
    /// Reads the DaemonSet and what it is explained with.
    fn read(&mut self) -> impl Future<Output = Result<Snapshot, InspectError>>;
    /// Resolves when what the snapshot is read from may have changed (never, if unknown).
    fn changed(&mut self) -> impl Future<Output = ()>;
    /// One sentence on a read error.
    fn describe(&self, e: &InspectError) -> String;
}

/// Runs `everynode status`; returns the exit code.
pub async fn run(args: StatusArgs) -> u8 {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let connection = match Connection::open(&args.target).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let name = args.target.daemonset.clone();
    let mut source = Cluster {
        connection,
        name: name.clone(),
        changes: None,
    };
    let options = Options {
        watch: args.watch,
        timeout: Some(args.timeout).filter(|t| !t.is_zero()),
        progress_deadline: args.progress_deadline,
    };
    follow(&mut source, &name, &options, &mut out, &mut err).await
}

/// The cluster as a [`Source`]: snapshots read with `client`, changes from watches on the
/// DaemonSet and its pods (started after the first read, which gives the selector).
struct Cluster {
    connection: Connection,
    name: String,
    changes: Option<BoxStream<'static, ()>>,
}

impl Cluster {
    fn watch_changes(&self, ds: &DaemonSet) -> BoxStream<'static, ()> {
        use kube::core::PartialObjectMeta;
        use kube::runtime::{WatchStreamExt, watcher};
        // Metadata only: a resourceVersion change is all a trigger needs.
        let daemonsets: kube::Api<PartialObjectMeta<DaemonSet>> =
            kube::Api::namespaced(self.connection.client.clone(), &self.connection.namespace);
        let ds_events = watcher(
            daemonsets,
            watcher::Config::default().fields(&format!("metadata.name={}", self.name)),
        )
        .default_backoff()
        .filter_map(|e| futures::future::ready(e.ok().map(|_| ())));
        let selector = ds
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .and_then(|s| kube::core::Selector::try_from(s).ok());
        let Some(selector) = selector else {
            return ds_events.boxed();
        };
        let pods: kube::Api<PartialObjectMeta<Pod>> =
            kube::Api::namespaced(self.connection.client.clone(), &self.connection.namespace);
        let pod_events = watcher(pods, watcher::Config::default().labels_from(&selector))
            .default_backoff()
            .filter_map(|e| futures::future::ready(e.ok().map(|_| ())));
        futures::stream::select(ds_events, pod_events).boxed()
    }
}

impl Source for Cluster {
    async fn read(&mut self) -> Result<Snapshot, InspectError> {
        let snapshot = super::snapshot::read(
            &self.connection.client,
            &self.connection.namespace,
            &self.name,
        )
        .await?;
        if self.changes.is_none() {
            self.changes = Some(self.watch_changes(&snapshot.daemonset));
        }
        Ok(snapshot)
    }

    async fn changed(&mut self) {
        match self.changes.as_mut() {
            Some(changes) => {
                if changes.next().await.is_none() {
                    self.changes = None;
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    fn describe(&self, e: &InspectError) -> String {
        self.connection.sentence(e)
    }
}

/// The wall clock as the loop sees it: the start's wall time plus tokio's monotonic time since.
struct Clock {
    start: Instant,
    start_ts: Timestamp,
}

impl Clock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.start_ts.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    /// The instant of wall time `at` (the start if it is earlier).
    fn instant(&self, at: Timestamp) -> Instant {
        let offset = Duration::try_from(at.duration_since(self.start_ts)).unwrap_or_default();
        self.start + offset
    }
}

fn plus(at: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// When the verdict may change with no change in the cluster: the progress deadline, or the end of
/// a failing node's grace.
fn due(progress: &Progress, limits: &Limits) -> Timestamp {
    let deadline = plus(progress.since, limits.progress_deadline);
    progress
        .failing_since
        .values()
        .map(|since| plus(*since, limits.failure_grace))
        .fold(deadline, Timestamp::min)
}

/// The loop of `everynode status` on `source`: reads, judges, prints, waits; returns the exit code.
/// Progress goes to `out`, warnings and errors to `err`.
pub async fn follow(
    source: &mut impl Source,
    name: &str,
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let clock = Clock {
        start: Instant::now(),
        start_ts: Timestamp::now(),
    };
    let limits = Limits {
        progress_deadline: options.progress_deadline,
        failure_grace: if options.watch {
            FAILURE_GRACE
        } else {
            Duration::ZERO
        },
    };
    let timeout_at = options.timeout.map(|t| clock.start + t);
    let mut progress: Option<Progress> = None;
    let mut shown: Vec<String> = Vec::new();
    let mut last_step: Option<Step> = None;
    let mut last_read_ok = clock.start;
    let mut failing: Option<String> = None;
    loop {
        let read_started = Instant::now();
        let read_deadline = [
            Some(read_started + READ_TIMEOUT),
            timeout_at,
            Some(last_read_ok + options.progress_deadline),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(read_started);
        let read = tokio::time::timeout_at(read_deadline, source.read()).await;
        let mut wake = None;
        match read {
            Ok(Ok(snapshot)) => {
                last_read_ok = Instant::now();
                failing = None;
                let now = clock.now();
                let explanation = snapshot.explain(now);
                let settling = settling_nodes(&snapshot.node_pods());
                let rollout = snapshot.rollout.as_ref();
                let p = observe_with_rollout(
                    progress.as_ref(),
                    &snapshot.daemonset,
                    &explanation,
                    &settling,
                    now,
                    rollout,
                );
                let v = verdict_with_rollout(
                    &snapshot.daemonset,
                    &explanation,
                    &p,
                    now,
                    &limits,
                    rollout,
                );
                wake = Some(clock.instant(due(&p, &limits)));
                progress = Some(p);
                match v {
                    Verdict::Complete { no_node, .. } => {
                        if let Some(warning) = no_node {
                            let _ = writeln!(err, "warning: {}", warning.words());
                        }
                        let _ = writeln!(out, "daemon set {name:?} successfully rolled out");
                        return EXIT_COMPLETE;
                    }
                    Verdict::CompleteAsAllowed { rollout, held } => {
                        let _ = writeln!(
                            out,
                            "daemon set {name:?} {}",
                            Verdict::allowed_words(&rollout, &held)
                        );
                        return EXIT_COMPLETE;
                    }
                    Verdict::CannotProgress { blocker, step } => {
                        let _ = writeln!(
                            err,
                            "error: daemon set {name:?} rollout cannot progress: {}",
                            blocker.words(&step)
                        );
                        for line in blocker.detail(&step) {
                            let _ = writeln!(err, "{line}");
                        }
                        return EXIT_CANNOT_PROGRESS;
                    }
                    Verdict::Progressing(step) => {
                        let mut lines = vec![step.headline(name)];
                        lines.extend(step.detail());
                        if lines != shown {
                            for line in &lines {
                                let _ = writeln!(out, "{line}");
                            }
                            shown = lines;
                        }
                        last_step = Some(step);
                    }
                }
            }
            Ok(Err(e)) if !e.is_transient() => {
                let _ = writeln!(err, "error: {}", source.describe(&e));
                return EXIT_UNREADABLE;
            }
            failed => {
                let sentence = match failed {
                    Ok(Err(e)) => source.describe(&e),
                    _ => {
                        if timeout_at.is_some_and(|t| Instant::now() >= t) {
                            return timed_out(
                                options,
                                name,
                                last_step.as_ref(),
                                failing.as_deref(),
                                err,
                            );
                        }
                        if read_deadline == read_started + READ_TIMEOUT {
                            format!(
                                "no answer from the API server within {}",
                                human_duration(READ_TIMEOUT)
                            )
                        } else {
                            "no answer from the API server".to_string()
                        }
                    }
                };
                if let Some(code) = retry_or_give_up(
                    sentence,
                    &mut failing,
                    options,
                    last_read_ok,
                    timeout_at,
                    name,
                    err,
                ) {
                    return code;
                }
            }
        }
        if !options.watch {
            return EXIT_PROGRESSING;
        }

        // Wait for a change, a due verdict, the resync or the retry, within the timeout.
        let next = if failing.is_some() {
            Instant::now() + RETRY_INTERVAL
        } else {
            let resync = Instant::now() + RESYNC;
            wake.map_or(resync, |w| w.max(Instant::now()).min(resync))
        };
        let timeout = async {
            match timeout_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timeout => {
                return timed_out(options, name, last_step.as_ref(), failing.as_deref(), err);
            }
            () = tokio::time::sleep_until(next) => {}
            () = source.changed(), if failing.is_none() => {
                let soon = (Instant::now() + DEBOUNCE).max(read_started + MIN_READ_INTERVAL);
                // Gather the burst of changes (the timeout still applies after this sleep).
                let until = timeout_at.map_or(soon, |t| soon.min(t));
                tokio::time::sleep_until(until).await;
                if timeout_at.is_some_and(|t| Instant::now() >= t) {
                    return timed_out(options, name, last_step.as_ref(), failing.as_deref(), err);
                }
            }
        }
    }
}

/// After a transient read error: says it when it is new (the first of a series, or different),
/// and gives up once nothing could be read for the progress deadline (or without --watch).
fn retry_or_give_up(
    sentence: String,
    failing: &mut Option<String>,
    options: &Options,
    last_read_ok: Instant,
    timeout_at: Option<Instant>,
    name: &str,
    err: &mut dyn Write,
) -> Option<u8> {
    if !options.watch {
        let _ = writeln!(err, "error: {sentence}");
        return Some(EXIT_UNREADABLE);
    }
    let now = Instant::now();
    if timeout_at.is_some_and(|t| now >= t) {
        return Some(timed_out(options, name, None, Some(&sentence), err));
    }
    if now.duration_since(last_read_ok) >= options.progress_deadline {
        let _ = writeln!(
            err,
            "error: cannot read daemon set {name:?} for {}: {sentence}",
            human_duration(options.progress_deadline)
        );
        return Some(EXIT_UNREADABLE);
    }
    if failing.as_deref() != Some(sentence.as_str()) {
        let _ = writeln!(err, "retrying: {sentence}");
    }
    *failing = Some(sentence);
    None
}

fn timed_out(
    options: &Options,
    name: &str,
    step: Option<&Step>,
    failing: Option<&str>,
    err: &mut dyn Write,
) -> u8 {
    let after = human_duration(options.timeout.unwrap_or_default());
    match (step, failing) {
        (Some(step), None) => {
            let _ = writeln!(
                err,
                "error: timed out after {after} waiting for daemon set {name:?} rollout: {}",
                step.stage.words()
            );
            for line in step.detail() {
                let _ = writeln!(err, "{line}");
            }
        }
        (_, Some(reason)) => {
            let _ = writeln!(
                err,
                "error: timed out after {after} waiting for daemon set {name:?}: {reason}"
            );
        }
        (None, None) => {
            let _ = writeln!(
                err,
                "error: timed out after {after} waiting for daemon set {name:?}: no answer from the API server"
            );
        }
    }
    EXIT_TIMEOUT
}

#[cfg(test)]
mod tests;
