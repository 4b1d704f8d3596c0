//! The binary as a kubectl plugin: installed or linked as `kubectl-everynode` (docs/kubectl-plugin.md,
//! the image, Krew), kubectl runs it for `kubectl everynode ...`. Which of the two it is comes from
//! argv[0]'s file name; as the plugin it names itself `kubectl everynode` in help and usage, and runs
//! only the operator commands (`explain`, `status`, `crd`, and the rollout commands `pause`,
//! `resume`, `freeze`, `unfreeze`, `promote`, `approve`, `abort`), not the controller.

use super::cli::Cli;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The file name kubectl finds the plugin by: `kubectl-` and the plugin's name.
pub const PLUGIN_FILE_NAME: &str = "kubectl-everynode";

/// How the binary was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// As `everynode` (or any other name): every command.
    Everynode,
    /// As `kubectl-everynode`, by kubectl or directly: the operator commands only.
    KubectlPlugin,
}

impl Invocation {
    /// From argv[0]: a file named `kubectl-everynode` (in any folder, with `.exe` on Windows) is
    /// the plugin; anything else, or no argv[0], is `everynode`.
    pub fn from_argv0(argv0: Option<&OsStr>) -> Self {
        let file = argv0.and_then(|a| Path::new(a).file_name()).map(Path::new);
        let name = match file {
            Some(f) if f.extension().is_some_and(|e| e.eq_ignore_ascii_case("exe")) => {
                f.file_stem()
            }
            Some(f) => Some(f.as_os_str()),
            None => None,
        };
        if name == Some(OsStr::new(PLUGIN_FILE_NAME)) {
            Invocation::KubectlPlugin
        } else {
            Invocation::Everynode
        }
    }

    /// The clap command: as the plugin, named `kubectl everynode` in help and usage, without `run`.
    pub fn command(self) -> clap::Command {
        let cmd = Cli::command();
        match self {
            Invocation::Everynode => cmd,
            Invocation::KubectlPlugin => cmd
                .name("kubectl everynode")
                .bin_name("kubectl everynode")
                .about(
                    "everynode's operator commands as a kubectl plugin: why each node has, lacks or \
                     waits for a DaemonSet's pod, and the rollout controls of its DaemonSetRollout",
                )
                .mut_subcommand("run", |run| run.hide(true)),
        }
    }

    /// Parses `args` (argv[0] first). As the plugin, a command that is not an operator command
    /// (`run`) is a usage error with one sentence.
    pub fn parse<I, T>(self, args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = self.command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
        if self == Invocation::KubectlPlugin && !cli.command.is_operator_command() {
            return Err(cmd.error(
                ErrorKind::InvalidSubcommand,
                "`kubectl everynode run` is not a plugin command: the controller starts as \
                 `everynode run` (or from deploy/everynode.yaml); the plugin runs explain, status and the rollout commands",
            ));
        }
        Ok(cli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cli::Command;

    #[test]
    fn the_plugin_is_the_file_named_kubectl_everynode() {
        for (argv0, want) in [
            ("kubectl-everynode", Invocation::KubectlPlugin),
            (
                "/usr/local/bin/kubectl-everynode",
                Invocation::KubectlPlugin,
            ),
            (
                "C:/krew/bin/kubectl-everynode.exe",
                Invocation::KubectlPlugin,
            ),
            ("everynode", Invocation::Everynode),
            ("/usr/local/bin/everynode", Invocation::Everynode),
            (
                "target/debug/deps/kubectl-everynode-0123abcd",
                Invocation::Everynode,
            ),
            ("kubectl-everynode-extra", Invocation::Everynode),
            ("/opt/kubectl-everynode/everynode", Invocation::Everynode),
            ("", Invocation::Everynode),
        ] {
            assert_eq!(
                Invocation::from_argv0(Some(OsStr::new(argv0))),
                want,
                "{argv0}"
            );
        }
        assert_eq!(Invocation::from_argv0(None), Invocation::Everynode);
    }

    #[test]
    fn the_plugin_runs_explain_and_names_itself_kubectl_everynode() {
        let cli = Invocation::KubectlPlugin
            .parse([
                "kubectl-everynode",
                "explain",
                "-n",
                "kube-system",
                "ds/agent",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Command::Explain(args) => {
                assert_eq!(args.target.daemonset, "agent");
                assert_eq!(args.target.namespace.as_deref(), Some("kube-system"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let help = Invocation::KubectlPlugin
            .command()
            .render_long_help()
            .to_string();
        assert!(help.contains("Usage: kubectl everynode"), "{help}");
        assert!(!help.contains("kubectl-everynode"), "{help}");
        assert!(!help.contains("\n  run "), "run is hidden: {help}");
        let explain_help = Invocation::KubectlPlugin
            .parse(["kubectl-everynode", "explain", "--help"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            explain_help.contains("Usage: kubectl everynode explain"),
            "{explain_help}"
        );
    }

    #[test]
    fn the_plugin_runs_the_rollout_commands() {
        use crate::core::rollout::commands::RolloutCommand as C;
        for (word, want) in [
            ("pause", C::Pause),
            ("resume", C::Resume),
            ("freeze", C::Freeze),
            ("unfreeze", C::Unfreeze),
            ("promote", C::Promote),
            ("approve", C::Approve),
            ("abort", C::Abort),
        ] {
            let cli = Invocation::KubectlPlugin
                .parse(["kubectl-everynode", word, "-n", "ops", "daemonset/agent"])
                .unwrap_or_else(|e| panic!("{word}: {e}"));
            assert!(cli.command.is_operator_command(), "{word}");
            let (command, target) = cli
                .command
                .rollout_command()
                .unwrap_or_else(|| panic!("{word} is not a rollout command"));
            assert_eq!(command, want);
            assert_eq!(target.daemonset, "agent");
            assert_eq!(target.namespace.as_deref(), Some("ops"));
        }
        assert!(
            Invocation::KubectlPlugin
                .parse(["kubectl-everynode", "pause", "deployment/agent"])
                .is_err()
        );
    }

    #[test]
    fn the_plugin_refuses_run_in_one_sentence() {
        let err = Invocation::KubectlPlugin
            .parse(["kubectl-everynode", "run", "--leader-elect=false"])
            .err()
            .unwrap_or_else(|| panic!("`kubectl everynode run` parsed"));
        assert_eq!(err.kind(), ErrorKind::InvalidSubcommand);
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("`kubectl everynode run` is not a plugin command"),
            "{text}"
        );
        // As everynode, run is a command like any other.
        assert!(matches!(
            Invocation::Everynode
                .parse(["everynode", "run", "--leader-elect=false"])
                .map(|c| c.command),
            Ok(Command::Run(_))
        ));
    }

    #[test]
    fn everynode_keeps_its_own_name() {
        let help = Invocation::Everynode
            .command()
            .render_long_help()
            .to_string();
        assert!(!help.contains("kubectl everynode"), "{help}");
        assert!(help.contains("explain"), "{help}");
        assert!(help.contains("run"), "{help}");
    }
}
