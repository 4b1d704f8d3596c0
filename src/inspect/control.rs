//! `everynode pause|resume|freeze|unfreeze|promote|approve|abort daemonset/NAME` (also as
//! `kubectl everynode ...`): reads the DaemonSet and its `DaemonSetRollout`, writes the patch
//! `core::rollout::commands` decides (or creates the `DaemonSetRollout`), and says in one line what
//! happened.

use super::InspectError;
use super::connect::Connection;
use super::snapshot;
use crate::api::DaemonSetRollout;
use crate::core::rollout::commands::{RolloutCommand, Write, command_patch};
use crate::runtime::cli::TargetArgs;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// The field manager of the plugin's writes: a GitOps tool applying the same object server-side
/// owns only the fields it sets, so the approvals written here survive its next apply.
pub const FIELD_MANAGER: &str = "kubectl-everynode";

/// What the API server answered that deserves its own sentence.
fn write_error(e: kube::Error, connection: &Connection, name: &str) -> String {
    match &e {
        kube::Error::Api(s) if s.code == 409 => format!(
            "DaemonSetRollout {name} changed since read; run again ({})",
            s.message
        ),
        kube::Error::Api(s) if s.code == 404 && s.message.contains("could not find") => format!(
            "the DaemonSetRollout CRD is not installed in this cluster: `everynode crd | kubectl apply --server-side -f -` installs it ({})",
            s.message
        ),
        kube::Error::Api(s) if s.code == 404 => {
            format!("DaemonSetRollout {name} changed since read (it is gone); run again")
        }
        kube::Error::Api(s) if s.code == 403 => format!(
            "the API server at {} forbids it (403 Forbidden): {}; the rollout commands need get, \
             create and patch on daemonsetrollouts.everynode.io in the namespace, and what explain \
             needs (docs/rollout-policy.md, RBAC)",
            connection.server, s.message
        ),
        kube::Error::Api(s) if s.code == 422 => {
            format!(
                "the API server rejected the change to DaemonSetRollout {name}: {}",
                s.message
            )
        }
        _ => connection.sentence(&InspectError::api(e)),
    }
}

/// Runs one rollout command; the line says what happened, the error is one sentence.
pub async fn run(command: RolloutCommand, target: &TargetArgs) -> Result<String, String> {
    let connection = Connection::open(target).await?;
    let name = &target.daemonset;
    let snapshot = snapshot::read(&connection.client, &connection.namespace, name)
        .await
        .map_err(|e| connection.sentence(&e))?;
    if let Some(note) = &snapshot.rollout_note {
        return Err(note.clone());
    }
    let decided = command_patch(
        command,
        snapshot.rollout.as_ref(),
        &snapshot.daemonset,
        &snapshot.hash,
    )
    .map_err(|e| e.to_string())?;
    let api: Api<DaemonSetRollout> =
        Api::namespaced(connection.client.clone(), &connection.namespace);
    match decided.write {
        Write::Patch(patch) => {
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            api.patch(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| write_error(e, &connection, name))?;
        }
        Write::Create(object) => {
            let object: DaemonSetRollout = serde_json::from_value(object)
                .map_err(|e| format!("cannot build the DaemonSetRollout: {e}"))?;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            api.create(&params, &object)
                .await
                .map_err(|e| write_error(e, &connection, name))?;
        }
    }
    Ok(format!("{}\n", decided.message))
}
