//! Child processes of the control plane: output to a log file, killed when the process that started
//! them dies, stopped by PID (never by name); each remembers how it was started, so that a fault test
//! can kill it (SIGKILL) and start it again identically ([`Process::respawn`]), or pause it (SIGSTOP).

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One running component.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Children are spawned from one long-lived thread: `PR_SET_PDEATHSIG` fires when the *thread* that
/// forked a child ends, so spawning from a test's own thread would kill the shared control plane as
/// soon as that test finished.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map_err(|e| eprintln!("controlplane: cannot start the spawner thread: {e}"))
            .ok();
        Mutex::new(tx)
    })
}

impl Process {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> io::Result<Self> {
        Self::spawn_with_env(name, program, args, &[], log)
    }

    /// [`Process::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> io::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group: a Ctrl-C in the terminal reaches the supervisor only, which then
            // stops the components in order.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| io::Error::other("spawner lock poisoned"))?
            .send((cmd, tx))
            .map_err(|_| io::Error::other("spawner thread is gone"))?;
        let child = rx
            .recv()
            .map_err(|_| io::Error::other("spawner thread is gone"))??;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// Starts a new process exactly as this one was started (program, arguments, environment, log
    /// appended to). The caller ends this one first if they must not run side by side.
    pub fn respawn(&self) -> io::Result<Self> {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self::spawn_with_env(&self.name, &self.program, &self.args, &env, &self.log)
    }

    /// SIGKILL (no grace, as a crash or an OOM kill would), then waits for the process to be gone.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process is frozen (its sockets stay open, nothing is answered) until
    /// [`Process::resume`]. Whether the signal was delivered.
    pub fn pause(&mut self) -> bool {
        self.exited().is_none() && signal(self.pid(), libc::SIGSTOP)
    }

    /// SIGCONT after [`Process::pause`]. Whether the signal was delivered.
    pub fn resume(&mut self) -> bool {
        self.exited().is_none() && signal(self.pid(), libc::SIGCONT)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the process to be gone.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        // A paused (SIGSTOPped) process handles SIGTERM only once it runs again.
        signal(self.pid(), libc::SIGCONT);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to one PID.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    match libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a PID we started; no memory is shared.
        Ok(pid) if pid > 0 => unsafe { libc::kill(pid, sig) == 0 },
        _ => false,
    }
}

/// Whether a process with this PID exists.
pub fn alive(pid: u32) -> bool {
    signal(pid, 0)
}
