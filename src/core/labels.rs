//! Well-known label, annotation and numeric constants of the upstream DaemonSet controller (§0).

/// Label on pods and ControllerRevisions: the hash of the template revision a pod was created from.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// Legacy label on pods: the DaemonSet's template generation when the pod was created.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";
/// DaemonSet annotation maintained by the API server: +1 on every template change.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// Most creates, and separately most deletes, issued in one sync.
pub const BURST_REPLICAS: usize = 250;
/// First slow-start create batch; batches double after it.
pub const SLOW_START_INITIAL_BATCH: usize = 1;
/// Unsatisfied expectations older than this count as satisfied.
pub const EXPECTATIONS_TIMEOUT_SECONDS: i64 = 5 * 60;
/// Failed-pod backoff: first delay and cap, as kube-controller-manager configures them.
pub const FAILED_POD_BACKOFF_INITIAL_SECONDS: u64 = 1;
pub const FAILED_POD_BACKOFF_MAX_SECONDS: u64 = 15 * 60;
/// Event source component of the upstream controller.
pub const EVENT_COMPONENT: &str = "daemonset-controller";
