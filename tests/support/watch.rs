//! A pod watcher that runs a caller's invariant over the live view of a DaemonSet's pods on every
//! watch event (not only at the end of a scenario), and a stand-in kubelet that sets a pod's Ready
//! condition itself for pods kwok leaves alone (`controlplane::NEVER_READY_LABEL`).

use super::TestEnv;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Pods by name, as the watch shows them.
pub type PodView = BTreeMap<String, Pod>;

/// Watches the pods matching `selector` and calls `check` with the whole view after every event;
/// the first `Some(problem)` it returns fails the test at [`InvariantWatcher::finish`].
pub struct InvariantWatcher {
    violation: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl InvariantWatcher {
    pub fn start<F>(env: &TestEnv, selector: &str, mut check: F) -> Self
    where
        F: FnMut(&PodView) -> Option<String> + Send + 'static,
    {
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
        let violation = Arc::new(Mutex::new(None));
        let v = violation.clone();
        let cfg = watcher::Config::default().labels(selector);
        let task = tokio::spawn(async move {
            let mut pods = PodView::new();
            let mut relist: Option<PodView> = None;
            let mut stream = watcher::watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                match ev {
                    Event::Init => {
                        relist = Some(PodView::new());
                        continue;
                    }
                    Event::InitApply(p) => {
                        relist
                            .get_or_insert_with(PodView::new)
                            .insert(p.metadata.name.clone().unwrap_or_default(), p);
                        continue;
                    }
                    Event::InitDone => pods = relist.take().unwrap_or_default(),
                    Event::Apply(p) => {
                        pods.insert(p.metadata.name.clone().unwrap_or_default(), p);
                    }
                    Event::Delete(p) => {
                        pods.remove(&p.metadata.name.clone().unwrap_or_default());
                    }
                }
                if let Some(problem) = check(&pods) {
                    let mut slot = v.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(problem);
                    }
                }
            }
        });
        Self { violation, task }
    }

    /// The first violation so far, if any.
    pub fn violation(&self) -> Option<String> {
        self.violation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops watching.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Stops watching; panics with the first violation seen.
    pub fn finish(self) {
        self.task.abort();
        let v = self.violation();
        assert!(v.is_none(), "invariant violated: {}", v.unwrap_or_default());
    }
}

/// Sets the pod's Ready (and ContainersReady) condition through the status subresource, with
/// `lastTransitionTime` now and phase Running, as a kubelet would. kwok rewrites only Pending pods
/// without Ready=True that lack `controlplane::NEVER_READY_LABEL`, so for a pod carrying that label
/// (or any Running pod) what is written here stays.
pub async fn set_pod_ready(api: &Api<Pod>, pod: &str, ready: bool) -> Result<(), kube::Error> {
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let status = if ready { "True" } else { "False" };
    let patch = serde_json::json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": status, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
        ],
    }});
    api.patch_status(pod, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(|_| ())
}
