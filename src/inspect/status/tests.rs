//! The loop of `everynode status` on a scripted source, in paused tokio time: it ends by its
//! deadlines whatever the source does.

use super::*;
use crate::core::fixtures::{daemonset, node};
use k8s_openapi::api::apps::v1::DaemonSetStatus;
use std::collections::VecDeque;

/// DaemonSet `agent` on one node `n0`, with its status as held: desired, updated, available.
fn snapshot(desired: i32, updated: i32, available: i32) -> Snapshot {
    let mut ds = daemonset("agent");
    ds.status = Some(DaemonSetStatus {
        observed_generation: Some(1),
        desired_number_scheduled: desired,
        updated_number_scheduled: Some(updated),
        number_available: Some(available),
        ..Default::default()
    });
    Snapshot {
        daemonset: ds,
        nodes: vec![node("n0")],
        pods: vec![],
        hash: "new".into(),
        rollout: None,
        rollout_note: None,
        revisions: vec![],
    }
}

enum Reply {
    Snap(Box<Snapshot>),
    Unavailable,
    NotFound,
    Hang,
}

/// Replies in order, the last one forever; a change reported every `changes` if set.
struct Script {
    replies: VecDeque<Reply>,
    reads: Vec<Instant>,
    changes: Option<Duration>,
}

impl Script {
    fn new(replies: Vec<Reply>) -> Self {
        Self {
            replies: replies.into(),
            reads: Vec::new(),
            changes: None,
        }
    }
}

impl Source for Script {
    async fn read(&mut self) -> Result<Snapshot, InspectError> {
        self.reads.push(Instant::now());
        let reply = if self.replies.len() > 1 {
            self.replies.pop_front()
        } else {
            None
        };
        let reply = match &reply {
            Some(r) => r,
            None => self.replies.front().expect("a reply"),
        };
        match reply {
            Reply::Snap(s) => Ok(s.as_ref().clone()),
            Reply::Unavailable => Err(InspectError::Api(kube::Error::Api(Box::new(
                kube::core::Status::failure(
                    "the server is currently unable to handle the request",
                    "ServiceUnavailable",
                )
                .with_code(503),
            )))),
            Reply::NotFound => Err(InspectError::DaemonSetNotFound {
                namespace: "default".into(),
                name: "agent".into(),
            }),
            Reply::Hang => std::future::pending().await,
        }
    }

    async fn changed(&mut self) {
        match self.changes {
            Some(every) => tokio::time::sleep(every).await,
            None => std::future::pending().await,
        }
    }

    fn describe(&self, e: &InspectError) -> String {
        match e {
            InspectError::Api(kube::Error::Api(s)) => s.message.clone(),
            other => other.to_string(),
        }
    }
}

fn options(watch: bool, timeout: u64, deadline: u64) -> Options {
    Options {
        watch,
        timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
        progress_deadline: Duration::from_secs(deadline),
    }
}

/// Runs the loop: exit code, stdout, stderr, seconds of (paused) time it took.
async fn run_script(script: &mut Script, options: Options) -> (u8, String, String, u64) {
    let start = Instant::now();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // A day of paused time: a loop that does not end by its deadlines fails here instead of hanging.
    let code = tokio::time::timeout(
        Duration::from_secs(86_400),
        follow(script, "agent", &options, &mut out, &mut err),
    )
    .await
    .unwrap_or_else(|_| panic!("status did not end within a day"));
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        start.elapsed().as_secs(),
    )
}

fn snap(desired: i32, updated: i32, available: i32) -> Reply {
    Reply::Snap(Box::new(snapshot(desired, updated, available)))
}

#[tokio::test(start_paused = true)]
async fn a_complete_rollout_exits_0_at_once() {
    let mut s = Script::new(vec![snap(1, 1, 1)]);
    let (code, out, err, secs) = run_script(&mut s, options(true, 0, 600)).await;
    assert_eq!(
        (code, out.as_str(), err.as_str(), secs),
        (0, "daemon set \"agent\" successfully rolled out\n", "", 0)
    );
}

#[tokio::test(start_paused = true)]
async fn desired_0_warns_on_stderr() {
    let mut s = Script::new(vec![snap(0, 0, 0)]);
    let (code, out, err, _) = run_script(&mut s, options(true, 0, 600)).await;
    assert_eq!(code, 0);
    assert_eq!(out, "daemon set \"agent\" successfully rolled out\n");
    assert!(
        err.starts_with("warning: the DaemonSet selects no node (DESIRED 0): 1 node"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_progress_ends_at_the_deadline_with_few_reads_and_one_progress_line() {
    let mut s = Script::new(vec![snap(1, 0, 0)]);
    let (code, out, err, secs) = run_script(&mut s, options(true, 0, 65)).await;
    // At the deadline itself, not at the next resync.
    assert_eq!((code, secs), (1, 65));
    assert_eq!(
        out,
        "Waiting for daemon set \"agent\" rollout to finish: 0 out of 1 new pods have been updated...\n  \
         n0: no pod yet: the controller creates one\n"
    );
    assert_eq!(
        err,
        "error: daemon set \"agent\" rollout cannot progress: no progress for 1m5s: 0 out of 1 new pods have been updated\n  \
         n0: no pod yet: the controller creates one\n"
    );
    // The resync every 10 s, and one read at the deadline.
    assert_eq!(s.reads.len(), 8, "reads at {:?}", s.reads);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_ends_a_progressing_rollout_with_exit_2() {
    let mut s = Script::new(vec![snap(1, 0, 0)]);
    let (code, _, err, secs) = run_script(&mut s, options(true, 5, 600)).await;
    assert_eq!((code, secs), (2, 5));
    assert_eq!(
        err,
        "error: timed out after 5s waiting for daemon set \"agent\" rollout: 0 out of 1 new pods have been updated\n  \
         n0: no pod yet: the controller creates one\n"
    );
}

#[tokio::test(start_paused = true)]
async fn progress_reported_by_changes_is_printed_once_per_change() {
    let mut s = Script::new(vec![
        snap(2, 0, 0),
        snap(2, 0, 0),
        snap(2, 1, 1),
        snap(2, 1, 1),
        snap(2, 2, 2),
    ]);
    s.changes = Some(Duration::from_secs(1));
    let (code, out, _, _) = run_script(&mut s, options(true, 0, 600)).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("Waiting")).collect();
    assert_eq!(
        lines,
        [
            "Waiting for daemon set \"agent\" rollout to finish: 0 out of 2 new pods have been updated...",
            "Waiting for daemon set \"agent\" rollout to finish: 1 out of 2 new pods have been updated...",
        ]
    );
    assert_eq!(s.reads.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_then_the_progress_deadline_ends_the_wait() {
    let mut s = Script::new(vec![Reply::Unavailable]);
    let (code, out, err, secs) = run_script(&mut s, options(true, 0, 30)).await;
    assert_eq!((code, out.as_str(), secs), (4, "", 30));
    assert_eq!(
        err,
        "retrying: the server is currently unable to handle the request\n\
         error: cannot read daemon set \"agent\" for 30s: the server is currently unable to handle the request\n"
    );
    assert!(
        (29..=31).contains(&s.reads.len()),
        "{} reads",
        s.reads.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_then_an_answer_goes_on() {
    let mut s = Script::new(vec![Reply::Unavailable, Reply::Unavailable, snap(1, 1, 1)]);
    let (code, _, err, secs) = run_script(&mut s, options(true, 0, 30)).await;
    assert_eq!((code, secs), (0, 2));
    assert_eq!(err.lines().count(), 1, "said once: {err}");
}

#[tokio::test(start_paused = true)]
async fn a_read_that_never_answers_ends_at_the_timeout_or_the_deadline() {
    let mut s = Script::new(vec![Reply::Hang]);
    let (code, _, err, secs) = run_script(&mut s, options(true, 5, 600)).await;
    assert_eq!((code, secs), (2, 5));
    assert_eq!(
        err,
        "error: timed out after 5s waiting for daemon set \"agent\": no answer from the API server\n"
    );
    let mut s = Script::new(vec![Reply::Hang]);
    let (code, _, err, secs) = run_script(&mut s, options(true, 0, 60)).await;
    assert_eq!((code, secs), (4, 60));
    assert!(
        err.ends_with(
            "error: cannot read daemon set \"agent\" for 1m: no answer from the API server\n"
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_daemonset_is_one_sentence_and_exit_4() {
    let mut s = Script::new(vec![Reply::NotFound]);
    let (code, out, err, secs) = run_script(&mut s, options(true, 0, 600)).await;
    assert_eq!(
        (code, out.as_str(), err.as_str(), secs),
        (
            4,
            "",
            "error: daemonset \"agent\" not found in namespace \"default\"\n",
            0
        )
    );
}

#[tokio::test(start_paused = true)]
async fn without_watch_the_state_is_printed_once() {
    let mut s = Script::new(vec![snap(1, 0, 0)]);
    let (code, out, _, secs) = run_script(&mut s, options(false, 0, 600)).await;
    assert_eq!((code, secs, out.lines().count()), (3, 0, 2));
    let mut s = Script::new(vec![Reply::Unavailable]);
    let (code, _, err, _) = run_script(&mut s, options(false, 0, 600)).await;
    assert_eq!(
        (code, err.as_str()),
        (
            4,
            "error: the server is currently unable to handle the request\n"
        )
    );
    let mut s = Script::new(vec![snap(1, 1, 1)]);
    assert_eq!(run_script(&mut s, options(false, 0, 600)).await.0, 0);
}

#[test]
fn the_progress_deadline_is_above_0() {
    assert_eq!(parse_deadline("10s"), Ok(Duration::from_secs(10)));
    assert!(parse_deadline("0s").is_err());
    assert!(parse_deadline("soon").is_err());
}
