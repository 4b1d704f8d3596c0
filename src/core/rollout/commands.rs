//! The writes of `kubectl everynode pause|resume|freeze|unfreeze|promote|approve|abort`: which
//! JSON merge patch (or which new `DaemonSetRollout`) each command makes, from what was read.
//!
//! Every patch carries the `metadata.resourceVersion` it was computed from, so the API server
//! refuses it (409 Conflict) when the object changed in between: an approval can never approve a
//! state the operator did not see. Approvals name the revision (or DaemonSet generation) they
//! apply to, so a stale one cannot approve the next rollout either.

use k8s_openapi::api::apps::v1::DaemonSet;
use serde_json::{Value, json};

use crate::api::{DaemonSetRollout, Phase};

/// One operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutCommand {
    Pause,
    Resume,
    Freeze,
    Unfreeze,
    Promote,
    Approve,
    Abort,
}

impl RolloutCommand {
    /// The command as the operator types it.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutCommand::Pause => "pause",
            RolloutCommand::Resume => "resume",
            RolloutCommand::Freeze => "freeze",
            RolloutCommand::Unfreeze => "unfreeze",
            RolloutCommand::Promote => "promote",
            RolloutCommand::Approve => "approve",
            RolloutCommand::Abort => "abort",
        }
    }
}

/// What a command writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A JSON merge patch of the existing `DaemonSetRollout` (with its resourceVersion).
    Patch(Value),
    /// A new `DaemonSetRollout` (pause and freeze when none exists).
    Create(Value),
}

/// A command's write and the line that says what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandWrite {
    pub write: Write,
    /// What happened, e.g. "daemonset/agent paused (DaemonSetRollout agent created)".
    pub message: String,
}

/// Why a command writes nothing: one sentence naming what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "no DaemonSetRollout {name}: {command} needs one (kubectl everynode pause daemonset/{name} creates one, or see docs/rollout-policy.md)"
    )]
    NoRollout { name: String, command: &'static str },
    #[error("nothing waits for approval (phase {phase})")]
    NothingWaits { phase: String },
    #[error("nothing to promote: DaemonSetRollout {name} has no canary and no waves")]
    NothingToPromote { name: String },
    #[error("nothing to promote: the rollout of {revision} is {phase}")]
    PromoteDone { revision: String, phase: String },
    #[error(
        "the DaemonSetRollout {name} describes revision {status} but the DaemonSet's template is {current}: the controller has not seen the change yet; run again"
    )]
    StaleStatus {
        name: String,
        status: String,
        current: String,
    },
    #[error("nothing to abort: DaemonSetRollout {name}'s revision {revision} is {phase}")]
    NothingToAbort {
        name: String,
        revision: String,
        phase: String,
    },
    #[error("the DaemonSetRollout {0} has no resourceVersion; read it again")]
    NoResourceVersion(String),
}

/// The write `command` makes for the DaemonSet `ds` and its `DaemonSetRollout` `dsr` (None: there
/// is none). `update_revision` is the DaemonSet template's current pod-template-hash (as `explain`
/// computes it).
pub fn command_patch(
    command: RolloutCommand,
    dsr: Option<&DaemonSetRollout>,
    ds: &DaemonSet,
    update_revision: &str,
) -> Result<CommandWrite, CommandError> {
    let name = ds.metadata.name.clone().unwrap_or_default();
    let what = format!("daemonset/{name}");
    let Some(dsr) = dsr else {
        return match command {
            RolloutCommand::Pause | RolloutCommand::Freeze => {
                let field = if command == RolloutCommand::Pause {
                    "paused"
                } else {
                    "frozen"
                };
                let mut object = json!({
                    "apiVersion": "everynode.io/v1alpha1",
                    "kind": "DaemonSetRollout",
                    "metadata": { "name": name },
                    "spec": { field: true },
                });
                if let Some(ns) = &ds.metadata.namespace {
                    object["metadata"]["namespace"] = json!(ns);
                }
                Ok(CommandWrite {
                    write: Write::Create(object),
                    message: format!(
                        "{what} {field} (DaemonSetRollout {name} created; delete it to hand the DaemonSet back to upstream's behaviour)"
                    ),
                })
            }
            RolloutCommand::Resume | RolloutCommand::Unfreeze => Err(CommandError::NoRollout {
                name,
                command: command.as_str(),
            }),
            RolloutCommand::Promote | RolloutCommand::Approve | RolloutCommand::Abort => {
                Err(CommandError::NoRollout {
                    name,
                    command: command.as_str(),
                })
            }
        };
    };
    let rollout = dsr.metadata.name.clone().unwrap_or_else(|| name.clone());
    let resource_version = dsr
        .metadata
        .resource_version
        .clone()
        .ok_or_else(|| CommandError::NoResourceVersion(rollout.clone()))?;
    let patch = |spec: Value| -> Value {
        json!({ "metadata": { "resourceVersion": resource_version }, "spec": spec })
    };
    let status = dsr.status.clone().unwrap_or_default();
    let phase = status
        .phase
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unset".into());
    // What the status describes must be what the DaemonSet is now, or an approval would apply to
    // a revision the operator did not see.
    let status_revision = || -> Result<String, CommandError> {
        match status.update_revision.as_deref() {
            Some(r) if r == update_revision => Ok(r.to_string()),
            Some(r) => Err(CommandError::StaleStatus {
                name: rollout.clone(),
                status: r.to_string(),
                current: update_revision.to_string(),
            }),
            None => Err(CommandError::StaleStatus {
                name: rollout.clone(),
                status: "(none yet)".into(),
                current: update_revision.to_string(),
            }),
        }
    };
    let (spec, message) = match command {
        RolloutCommand::Pause => (
            json!({ "paused": true }),
            if dsr.spec.paused {
                format!("{what} was already paused (DaemonSetRollout {rollout})")
            } else {
                format!("{what} paused (DaemonSetRollout {rollout})")
            },
        ),
        RolloutCommand::Resume => (
            json!({ "paused": null }),
            if dsr.spec.paused {
                format!("{what} resumed (DaemonSetRollout {rollout})")
            } else {
                format!("{what} was not paused (DaemonSetRollout {rollout})")
            },
        ),
        RolloutCommand::Freeze => (
            json!({ "frozen": true }),
            if dsr.spec.frozen {
                format!("{what} was already frozen (DaemonSetRollout {rollout})")
            } else {
                format!("{what} frozen: nothing is created or deleted (DaemonSetRollout {rollout})")
            },
        ),
        RolloutCommand::Unfreeze => (
            json!({ "frozen": null }),
            if dsr.spec.frozen {
                format!("{what} unfrozen (DaemonSetRollout {rollout})")
            } else {
                format!("{what} was not frozen (DaemonSetRollout {rollout})")
            },
        ),
        RolloutCommand::Promote => {
            if dsr.spec.canary.is_none() && dsr.spec.waves.is_none() {
                return Err(CommandError::NothingToPromote { name: rollout });
            }
            let revision = status_revision()?;
            if matches!(
                status.phase,
                Some(Phase::Complete | Phase::Failed | Phase::RolledBack)
            ) {
                return Err(CommandError::PromoteDone { revision, phase });
            }
            let step = status.step.as_ref();
            let through = step.map(|s| s.index).unwrap_or(0);
            let step_name = step
                .map(|s| s.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("step {through}"));
            (
                json!({ "approvals": { "promote": { "revision": revision, "throughStep": through } } }),
                format!(
                    "{what} promoted: revision {revision} skips the bakes through {step_name} (DaemonSetRollout {rollout})"
                ),
            )
        }
        RolloutCommand::Approve => {
            let mut approvals = serde_json::Map::new();
            let mut approved = Vec::new();
            match status.phase {
                Some(Phase::WaitingForApproval) => {
                    let revision = status_revision()?;
                    approvals.insert("canaryRevision".into(), json!(revision));
                    approved.push(format!("the canary of revision {revision}"));
                }
                Some(Phase::Failed) => {
                    let revision = status_revision()?;
                    approvals.insert("retryRevision".into(), json!(revision));
                    approved.push(format!("a retry of the failed revision {revision}"));
                }
                _ => {}
            }
            if let Some(held) = &status.held_deletions {
                approvals.insert(
                    "deletionsForGeneration".into(),
                    json!(held.daemon_set_generation),
                );
                approved.push(format!(
                    "the held deletions of generation {} ({} of {} pods)",
                    held.daemon_set_generation, held.pods, held.of
                ));
            }
            if approved.is_empty() {
                return Err(CommandError::NothingWaits { phase });
            }
            (
                json!({ "approvals": Value::Object(approvals) }),
                format!(
                    "{what} approved: {} (DaemonSetRollout {rollout})",
                    approved.join(" and ")
                ),
            )
        }
        RolloutCommand::Abort => {
            if matches!(status.phase, Some(Phase::Complete | Phase::RolledBack))
                && status.update_revision.as_deref() == Some(update_revision)
            {
                return Err(CommandError::NothingToAbort {
                    name: rollout,
                    revision: update_revision.to_string(),
                    phase,
                });
            }
            (
                json!({ "approvals": { "abortRevision": update_revision } }),
                format!(
                    "{what}: rollback of revision {update_revision} requested (DaemonSetRollout {rollout})"
                ),
            )
        }
    };
    Ok(CommandWrite {
        write: Write::Patch(patch(spec)),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        Canary, DaemonSetRolloutSpec, DaemonSetRolloutStatus, HeldDeletions, StepStatus,
    };
    use crate::core::fixtures::daemonset;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn dsr(spec: DaemonSetRolloutSpec, status: Option<DaemonSetRolloutStatus>) -> DaemonSetRollout {
        let mut d = DaemonSetRollout::new("agent", spec);
        d.metadata.namespace = Some("default".into());
        d.metadata.resource_version = Some("42".into());
        d.status = status;
        d
    }

    fn status(phase: Phase, revision: &str) -> DaemonSetRolloutStatus {
        DaemonSetRolloutStatus {
            phase: Some(phase),
            update_revision: Some(revision.into()),
            ..Default::default()
        }
    }

    fn ds() -> DaemonSet {
        let mut d = daemonset("agent");
        d.metadata.namespace = Some("default".into());
        d
    }

    fn patch_of(w: &CommandWrite) -> &Value {
        match &w.write {
            Write::Patch(v) => v,
            Write::Create(v) => panic!("created {v}"),
        }
    }

    fn run(
        command: RolloutCommand,
        dsr: Option<&DaemonSetRollout>,
    ) -> Result<CommandWrite, CommandError> {
        command_patch(command, dsr, &ds(), "rev2")
    }

    #[test]
    fn pause_and_freeze_create_a_minimal_rollout_when_none_exists() {
        for (command, field) in [
            (RolloutCommand::Pause, "paused"),
            (RolloutCommand::Freeze, "frozen"),
        ] {
            let w = run(command, None).unwrap_or_else(|e| panic!("{e}"));
            let Write::Create(object) = &w.write else {
                panic!("patched: {w:?}")
            };
            assert_eq!(
                object,
                &json!({
                    "apiVersion": "everynode.io/v1alpha1",
                    "kind": "DaemonSetRollout",
                    "metadata": { "name": "agent", "namespace": "default" },
                    "spec": { field: true },
                })
            );
            // It decodes as the type the controller reads.
            let typed: DaemonSetRollout =
                serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(typed.spec.paused, command == RolloutCommand::Pause);
            assert_eq!(typed.spec.frozen, command == RolloutCommand::Freeze);
            assert!(
                w.message.contains("DaemonSetRollout agent created"),
                "{}",
                w.message
            );
        }
    }

    #[test]
    fn the_others_need_a_rollout() {
        for command in [
            RolloutCommand::Resume,
            RolloutCommand::Unfreeze,
            RolloutCommand::Promote,
            RolloutCommand::Approve,
            RolloutCommand::Abort,
        ] {
            assert_eq!(
                run(command, None),
                Err(CommandError::NoRollout {
                    name: "agent".into(),
                    command: command.as_str()
                })
            );
        }
    }

    #[test]
    fn pause_resume_freeze_unfreeze_patch_one_field_with_the_resource_version() {
        let d = dsr(DaemonSetRolloutSpec::default(), None);
        for (command, spec) in [
            (RolloutCommand::Pause, json!({ "paused": true })),
            (RolloutCommand::Resume, json!({ "paused": null })),
            (RolloutCommand::Freeze, json!({ "frozen": true })),
            (RolloutCommand::Unfreeze, json!({ "frozen": null })),
        ] {
            let w = run(command, Some(&d)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                patch_of(&w),
                &json!({ "metadata": { "resourceVersion": "42" }, "spec": spec }),
                "{command:?}"
            );
        }
        let paused = dsr(
            DaemonSetRolloutSpec {
                paused: true,
                ..Default::default()
            },
            None,
        );
        let w = run(RolloutCommand::Resume, Some(&paused)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            w.message,
            "daemonset/agent resumed (DaemonSetRollout agent)"
        );
        let w = run(RolloutCommand::Pause, Some(&paused)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            w.message,
            "daemonset/agent was already paused (DaemonSetRollout agent)"
        );
    }

    fn canary_spec() -> DaemonSetRolloutSpec {
        DaemonSetRolloutSpec {
            canary: Some(Canary {
                nodes: IntOrString::Int(1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn promote_names_the_update_revision_and_the_current_step() {
        let mut st = status(Phase::Baking, "rev2");
        st.step = Some(StepStatus {
            index: 1,
            name: "1/3 zone=a".into(),
            ..Default::default()
        });
        let d = dsr(canary_spec(), Some(st));
        let w = run(RolloutCommand::Promote, Some(&d)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patch_of(&w),
            &json!({
                "metadata": { "resourceVersion": "42" },
                "spec": { "approvals": { "promote": { "revision": "rev2", "throughStep": 1 } } }
            })
        );
        // A status about another revision, no canary or waves, or a finished rollout: refused.
        let stale = dsr(canary_spec(), Some(status(Phase::Baking, "rev1")));
        assert!(matches!(
            run(RolloutCommand::Promote, Some(&stale)),
            Err(CommandError::StaleStatus { .. })
        ));
        let plain = dsr(
            DaemonSetRolloutSpec::default(),
            Some(status(Phase::Baking, "rev2")),
        );
        assert!(matches!(
            run(RolloutCommand::Promote, Some(&plain)),
            Err(CommandError::NothingToPromote { .. })
        ));
        let done = dsr(canary_spec(), Some(status(Phase::Complete, "rev2")));
        assert!(matches!(
            run(RolloutCommand::Promote, Some(&done)),
            Err(CommandError::PromoteDone { .. })
        ));
    }

    #[test]
    fn approve_picks_what_waits() {
        let canary = dsr(
            canary_spec(),
            Some(status(Phase::WaitingForApproval, "rev2")),
        );
        let w = run(RolloutCommand::Approve, Some(&canary)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patch_of(&w)["spec"],
            json!({ "approvals": { "canaryRevision": "rev2" } })
        );
        assert_eq!(patch_of(&w)["metadata"]["resourceVersion"], json!("42"));

        let failed = dsr(canary_spec(), Some(status(Phase::Failed, "rev2")));
        let w = run(RolloutCommand::Approve, Some(&failed)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patch_of(&w)["spec"],
            json!({ "approvals": { "retryRevision": "rev2" } })
        );

        let mut st = status(Phase::Progressing, "rev2");
        st.held_deletions = Some(HeldDeletions {
            pods: 9,
            of: 12,
            daemon_set_generation: 7,
        });
        let held = dsr(DaemonSetRolloutSpec::default(), Some(st));
        let w = run(RolloutCommand::Approve, Some(&held)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patch_of(&w)["spec"],
            json!({ "approvals": { "deletionsForGeneration": 7 } })
        );
        assert!(w.message.contains("9 of 12 pods"), "{}", w.message);

        let nothing = dsr(canary_spec(), Some(status(Phase::Progressing, "rev2")));
        assert_eq!(
            run(RolloutCommand::Approve, Some(&nothing)).map_err(|e| e.to_string()),
            Err("nothing waits for approval (phase Progressing)".to_string())
        );
        // A canary wait of a revision the DaemonSet no longer has is not approved.
        let stale = dsr(
            canary_spec(),
            Some(status(Phase::WaitingForApproval, "rev1")),
        );
        assert!(matches!(
            run(RolloutCommand::Approve, Some(&stale)),
            Err(CommandError::StaleStatus { .. })
        ));
    }

    #[test]
    fn abort_names_the_update_revision() {
        let d = dsr(canary_spec(), Some(status(Phase::Baking, "rev2")));
        let w = run(RolloutCommand::Abort, Some(&d)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patch_of(&w),
            &json!({
                "metadata": { "resourceVersion": "42" },
                "spec": { "approvals": { "abortRevision": "rev2" } }
            })
        );
        let done = dsr(canary_spec(), Some(status(Phase::Complete, "rev2")));
        assert!(matches!(
            run(RolloutCommand::Abort, Some(&done)),
            Err(CommandError::NothingToAbort { .. })
        ));
    }

    #[test]
    fn a_rollout_without_resource_version_is_not_patched() {
        let mut d = dsr(DaemonSetRolloutSpec::default(), None);
        d.metadata.resource_version = None;
        assert_eq!(
            run(RolloutCommand::Pause, Some(&d)),
            Err(CommandError::NoResourceVersion("agent".into()))
        );
    }
}
