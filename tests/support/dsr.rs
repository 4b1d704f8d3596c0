//! DaemonSetRollout helpers for the policy e2e suites: server-side apply of a DSR (the way a user or
//! GitOps tool writes one), reading its status, waiting for a phase or condition, and the events of a
//! DaemonSet.

use super::{TestEnv, wait_for};
use everynode::api::daemonset_rollout::{DaemonSetRollout, DaemonSetRolloutStatus, Phase};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::time::Duration;

/// The field manager the tests write DSRs with.
pub const MANAGER: &str = "e2e-test";

impl TestEnv {
    /// The DaemonSetRollouts of the test's namespace.
    pub fn dsrs(&self) -> Api<DaemonSetRollout> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Server-side applies DaemonSetRollout `name` with `spec` (JSON); the API server's error if it
    /// rejects it.
    pub async fn try_apply_dsr(
        &self,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<DaemonSetRollout, kube::Error> {
        let body = serde_json::json!({
            "apiVersion": "everynode.io/v1alpha1",
            "kind": "DaemonSetRollout",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec,
        });
        self.dsrs()
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
    }

    /// [`TestEnv::try_apply_dsr`] that must succeed.
    pub async fn apply_dsr(&self, name: &str, spec: serde_json::Value) -> DaemonSetRollout {
        self.try_apply_dsr(name, spec.clone())
            .await
            .unwrap_or_else(|e| panic!("apply DaemonSetRollout {name} {spec}: {e}"))
    }

    /// Merge-patches the DSR's spec (e.g. `{"approvals": {"canaryRevision": hash}}`), as
    /// `kubectl everynode approve` would.
    pub async fn patch_dsr(&self, name: &str, spec: serde_json::Value) {
        self.dsrs()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patch DaemonSetRollout {name}: {e}"));
    }

    /// The DSR's status (default when it has none yet).
    pub async fn dsr_status(&self, name: &str) -> DaemonSetRolloutStatus {
        self.dsrs()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get DaemonSetRollout {name}: {e}"))
            .status
            .unwrap_or_default()
    }

    /// Waits until the DSR's phase is `phase` and its status describes `hash` (when given); returns
    /// the status.
    pub async fn wait_dsr_phase(
        &self,
        name: &str,
        phase: Phase,
        hash: Option<&str>,
        timeout: Duration,
    ) -> DaemonSetRolloutStatus {
        wait_for(
            &format!("DaemonSetRollout {name} in phase {phase:?} for revision {hash:?}"),
            timeout,
            || async {
                let s = self.dsr_status(name).await;
                let ok = s.phase == Some(phase)
                    && hash.is_none_or(|h| s.update_revision.as_deref() == Some(h));
                if ok {
                    Ok(s)
                } else {
                    Err(format!(
                        "phase {:?}, revision {:?}, wave {:?}, progress {:?}, conditions {:?}",
                        s.phase,
                        s.update_revision,
                        s.wave,
                        s.progress,
                        s.conditions
                            .iter()
                            .map(|c| format!("{}={}/{}", c.type_, c.status, c.reason))
                            .collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await
    }

    /// Waits until the DSR has condition `type_` with `status`; returns its reason and message.
    pub async fn wait_dsr_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> (String, String) {
        wait_for(
            &format!("DaemonSetRollout {name} condition {type_}={status}"),
            timeout,
            || async {
                let s = self.dsr_status(name).await;
                match s.conditions.iter().find(|c| c.type_ == type_) {
                    Some(c) if c.status == status => Ok((c.reason.clone(), c.message.clone())),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
    }

    /// The events about DaemonSet `ds` as `type reason: message` lines.
    pub async fn daemonset_events(&self, ds: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = events
            .list(&ListParams::default().fields(&format!(
                "involvedObject.kind=DaemonSet,involvedObject.name={ds}"
            )))
            .await
            .unwrap_or_else(|e| panic!("list events: {e}"));
        list.items
            .iter()
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.type_.as_deref().unwrap_or(""),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect()
    }
}
