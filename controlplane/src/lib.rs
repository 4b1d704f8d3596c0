//! A real local Kubernetes control plane for everynode's tests and demo: etcd, kube-apiserver (RBAC on),
//! kube-controller-manager (without its DaemonSet controller by default), kube-scheduler and kwok fake
//! nodes, all on 127.0.0.1 with random free ports and one folder per instance.
//!
//! Binaries come from `controlplane/build.sh` (built from Go modules, cached outside the repository).
//! Every process is started by [`ControlPlane::start`] and stopped by PID; each component logs to
//! `<dir>/logs/<component>.log`, which [`ControlPlane::describe_logs`] names for failing tests.
//!
//! For fault tests a component can be killed and started again identically
//! ([`ControlPlane::restart_component`]) or frozen for a while ([`ControlPlane::pause_component`]).

pub mod binaries;
pub mod nodes;
pub mod pki;
pub mod process;

use binaries::Binaries;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::Api;
use process::Process;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A KubeSchedulerConfiguration that differs from the defaults only in its client connection (and
/// leader election off, as the flags say when no configuration is given).
fn scheduler_config(kubeconfig: &Path, limit: ClientLimit) -> String {
    format!(
        "apiVersion: kubescheduler.config.k8s.io/v1\n\
         kind: KubeSchedulerConfiguration\n\
         clientConnection:\n  kubeconfig: {:?}\n  qps: {}\n  burst: {}\n\
         leaderElection:\n  leaderElect: false\n",
        kubeconfig.display().to_string(),
        limit.qps,
        limit.burst
    )
}

/// Pods carrying this label are never made Ready by kwok (they stay Pending), for tests of rollouts
/// whose new pods never become ready.
pub const NEVER_READY_LABEL: &str = "everynode.test/never-ready";

/// Pods carrying this label crash-loop under kwok: Running, Ready False, every container waiting in
/// `CrashLoopBackOff` with a `restartCount` that rises by one about every second, for tests of
/// rollouts whose new pods fail.
pub const CRASH_LOOP_LABEL: &str = "everynode.test/crash-loop";

/// What can go wrong starting or running the local control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the control plane's certificates: {0}")]
    Pki(String),
    #[error("cannot build the control-plane binaries: {0}")]
    Build(String),
    #[error("{component} did not become ready within {seconds}s; its log: {log}")]
    NotReady {
        component: String,
        seconds: u64,
        log: PathBuf,
    },
    #[error("{component} exited early ({status}); its log: {log}")]
    Exited {
        component: String,
        status: String,
        log: PathBuf,
    },
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("no running component named {0}")]
    NoComponent(String),
    #[error("cannot install the CustomResourceDefinitions of {path}: {why}")]
    Crd { path: PathBuf, why: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to start a control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// The instance folder; a fresh one under the system temp folder when `None`.
    pub dir: Option<PathBuf>,
    /// `--controllers` of kube-controller-manager.
    pub kcm_controllers: String,
    /// Fake nodes `kwok-node-0..n` created once everything is up.
    pub nodes: usize,
    /// kwok's node lease duration; kube-controller-manager's node grace period is set above it.
    pub node_lease_seconds: u32,
    /// Extra identities (group `system:masters`), each with its own token and kubeconfig
    /// ([`ControlPlane::user_kubeconfig`]), so that two clients can be told apart.
    pub users: Vec<String>,
    /// The group of the extra `users`: `system:masters` by default (all rights, and exempt from API
    /// Priority and Fairness). Any other group is bound to the `cluster-admin` ClusterRole at start
    /// and is subject to API Priority and Fairness, as a real controller's identity is (for tests
    /// that want real 429s).
    pub users_group: String,
    /// Whether the API server writes an audit log ([`ControlPlane::audit_log`]): one JSON line per
    /// request stage of the `users` above at Metadata level, nothing for anyone else.
    pub audit: bool,
    /// Extra kube-apiserver flags, after the usual ones (e.g. a small `--max-requests-inflight` so
    /// that API Priority and Fairness gives a priority level a single seat).
    pub apiserver_args: Vec<String>,
    /// CustomResourceDefinitions to install once the API server is ready (files, or folders whose
    /// `*.yaml` files are applied), each waited for until Established.
    pub crds: Vec<PathBuf>,
    /// kube-scheduler's client-side limit: `None` keeps its defaults (50 QPS, burst 100, as a user's
    /// cluster has them); `Some` runs it from a KubeSchedulerConfiguration whose `clientConnection`
    /// has this QPS and burst (the benchmark sets one that never binds). kwok has no client-side
    /// limit to lift: its client uses an always-allow rate limiter.
    pub scheduler_client_limit: Option<ClientLimit>,
}

/// A client-go client-side limit: QPS and burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientLimit {
    pub qps: f64,
    pub burst: u32,
}

impl ClientLimit {
    /// A limit so large that it never binds on one machine: 100000 QPS, burst 100000.
    pub fn never_binding() -> Self {
        Self {
            qps: 100_000.0,
            burst: 100_000,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dir: None,
            kcm_controllers: "*,-daemonset-controller".into(),
            nodes: 0,
            // Renewed every quarter of this: 1000 nodes cost ~22 lease writes/s instead of ~100 at 40 s.
            node_lease_seconds: 180,
            users: Vec::new(),
            users_group: "system:masters".into(),
            audit: false,
            apiserver_args: Vec::new(),
            crds: Vec::new(),
            scheduler_client_limit: None,
        }
    }
}

/// A running control plane. Dropping it stops every process it started.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    binaries: Binaries,
    pki: pki::Pki,
    audit_log: Option<PathBuf>,
    etcd_port: u16,
    processes: Mutex<Vec<Process>>,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?;
    let port = l
        .local_addr()
        .map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?
        .port();
    Ok(port)
}

fn etcd_healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

impl ControlPlane {
    /// Builds what is missing, starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
    /// kwok, waits for each to be ready, and creates `options.nodes` fake nodes.
    pub async fn start(options: Options) -> Result<Self, Error> {
        let binaries = Binaries::locate()?;
        let dir = match &options.dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!(
                "everynode-cp-{}-{}",
                std::process::id(),
                free_port()?
            )),
        };
        for sub in ["logs", "etcd", "certs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(&dir.join(sub), e))?;
        }
        let pki =
            pki::write_with_users_in_group(&dir.join("pki"), &options.users, &options.users_group)?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server, &pki.ca_cert, &pki.admin_token)?;
        for (user, token) in &pki.user_tokens {
            let path = dir.join(format!("kubeconfig-{user}"));
            write_kubeconfig(&path, &server, &pki.ca_cert, token)?;
        }
        let audit_log = options.audit.then(|| dir.join("logs").join("audit.log"));
        let mut cp = Self {
            dir,
            kubeconfig,
            server,
            binaries,
            pki,
            audit_log,
            etcd_port: 0,
            processes: Mutex::new(Vec::new()),
        };
        std::fs::write(
            cp.dir.join("supervisor.pid"),
            std::process::id().to_string(),
        )
        .map_err(|e| Error::io(&cp.dir, e))?;

        // etcd
        let etcd_port = free_port()?;
        cp.etcd_port = etcd_port;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = cp.dir.join("etcd");
        cp.spawn(
            "etcd",
            &[
                "--name=everynode".into(),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=everynode={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--quota-backend-bytes=8589934592".into(),
                "--auto-compaction-retention=1".into(),
                "--log-level=warn".into(),
            ],
        )?;
        cp.wait_ready("etcd", Duration::from_secs(60), || async move {
            etcd_healthy(etcd_port)
        })
        .await?;

        // kube-apiserver
        let p = &cp.pki;
        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", cp.dir.join("certs").display()),
            format!("--tls-cert-file={}", p.server_cert.display()),
            format!("--tls-private-key-file={}", p.server_key.display()),
            format!("--client-ca-file={}", p.ca_cert.display()),
            format!("--token-auth-file={}", p.token_file.display()),
            "--authorization-mode=Node,RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p.sa_pub.display()),
            format!("--service-account-signing-key-file={}", p.sa_key.display()),
            "--service-cluster-ip-range=10.0.0.0/16".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ];
        if let Some(log) = &cp.audit_log {
            let policy = cp.dir.join("audit-policy.yaml");
            std::fs::write(&policy, audit_policy(&options.users))
                .map_err(|e| Error::io(&policy, e))?;
            apiserver_args.extend([
                format!("--audit-policy-file={}", policy.display()),
                format!("--audit-log-path={}", log.display()),
                "--audit-log-format=json".into(),
                // One event per request written as it happens; never rotated during a run.
                "--audit-log-mode=blocking".into(),
                "--audit-log-maxsize=0".into(),
            ]);
        }
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        cp.spawn("kube-apiserver", &apiserver_args)?;
        let client = cp.client().await?;
        cp.wait_apiserver_ready(&client).await?;
        if !options.users.is_empty() && options.users_group != "system:masters" {
            let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "everynode-extra-users"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": options.users_group}],
                }))
                .map_err(|e| Error::Kubeconfig(format!("ClusterRoleBinding: {e}")))?;
            Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
                .create(&Default::default(), &binding)
                .await?;
        }

        cp.install_crds(&options.crds).await?;

        // kube-controller-manager
        let kcm = cp.kcm_args(
            "kube-controller-manager",
            &options.kcm_controllers,
            options.node_lease_seconds,
        )?;
        cp.spawn("kube-controller-manager", &kcm)?;
        if options.kcm_controllers.contains('*')
            || options.kcm_controllers.contains("serviceaccount")
        {
            let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
            cp.wait_ready(
                "kube-controller-manager",
                Duration::from_secs(120),
                move || {
                    let sa = sa.clone();
                    async move { sa.get_opt("default").await.ok().flatten().is_some() }
                },
            )
            .await?;
        }

        // kube-scheduler
        cp.start_scheduler(options.scheduler_client_limit).await?;

        // kwok
        let stages = cp.write_kwok_stages()?;
        cp.spawn(
            "kwok",
            &[
                format!("--kubeconfig={}", cp.kubeconfig.display()),
                format!("--config={}", stages.display()),
                "--manage-all-nodes=false".into(),
                format!(
                    "--manage-nodes-with-annotation-selector={}={}",
                    nodes::KWOK_ANNOTATION,
                    nodes::KWOK_ANNOTATION_VALUE
                ),
                // Room for a million pods, clear of the service range 10.0.0.0/16.
                "--cidr=10.64.0.0/12".into(),
                "--node-ip=127.0.0.1".into(),
                format!(
                    "--node-lease-duration-seconds={}",
                    options.node_lease_seconds
                ),
            ],
        )?;

        if options.nodes > 0 {
            for i in 0..options.nodes {
                nodes::create(
                    &client,
                    &nodes::fake_node(&format!("kwok-node-{i}"), &[], vec![]),
                )
                .await?;
            }
            let api: Api<Node> = Api::all(client.clone());
            let want = options.nodes;
            cp.wait_ready("kwok", Duration::from_secs(120), move || {
                let api = api.clone();
                async move {
                    api.list(&Default::default()).await.is_ok_and(|l| {
                        l.items.iter().filter(|n| nodes::is_ready(n)).count() >= want
                    })
                }
            })
            .await?;
        }
        Ok(cp)
    }

    /// The instance folder (logs, kubeconfig, certificates, etcd data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An admin (system:masters) kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>` of the API server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kubeconfig of an extra user of [`Options::users`], `None` for a user not declared there.
    pub fn user_kubeconfig(&self, user: &str) -> Option<PathBuf> {
        self.pki
            .user_tokens
            .iter()
            .any(|(u, _)| u == user)
            .then(|| self.dir.join(format!("kubeconfig-{user}")))
    }

    /// The API server's audit log (JSON lines) when started with [`Options::audit`].
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_log.as_deref()
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The CA that signed the API server's certificate.
    pub fn ca_cert(&self) -> &Path {
        &self.pki.ca_cert
    }

    /// A new admin client. Make one per async runtime: a client is tied to the runtime it was made on.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// The log file of a component (`etcd`, `kube-apiserver`, ...).
    pub fn log(&self, component: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{component}.log"))
    }

    /// One line naming every component's log, for failing tests.
    pub fn describe_logs(&self) -> String {
        let procs = self.processes.lock().map(|p| {
            p.iter()
                .map(|p| p.log().display().to_string())
                .collect::<Vec<_>>()
        });
        format!(
            "control-plane logs: {}",
            procs.unwrap_or_default().join(" ")
        )
    }

    /// Arguments of a kube-controller-manager running `controllers`.
    pub fn kcm_args(
        &self,
        name: &str,
        controllers: &str,
        node_lease_seconds: u32,
    ) -> Result<Vec<String>, Error> {
        let cert_dir = self.dir.join("certs").join(name);
        std::fs::create_dir_all(&cert_dir).map_err(|e| Error::io(&cert_dir, e))?;
        Ok(vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()?),
            format!("--cert-dir={}", cert_dir.display()),
            format!(
                "--service-account-private-key-file={}",
                self.pki.sa_key.display()
            ),
            format!("--root-ca-file={}", self.pki.ca_cert.display()),
            format!("--controllers={controllers}"),
            // Above kwok's lease duration, so fake nodes never go NotReady between renewals.
            format!("--node-monitor-grace-period={}s", node_lease_seconds * 2),
        ])
    }

    /// Starts upstream's DaemonSet controller alone, in a kube-controller-manager of its own named
    /// `name`, as the control plane's `user` (its own kubeconfig, so the audit log tells its requests
    /// apart), with the client-side limit `qps_burst` (`None`: kube-controller-manager's defaults,
    /// 20 QPS and burst 30). The caller owns the process.
    pub fn spawn_upstream_daemonset_controller(
        &self,
        name: &str,
        user: &str,
        node_lease_seconds: u32,
        qps_burst: Option<(f64, u32)>,
    ) -> Result<Process, Error> {
        let kubeconfig = self
            .user_kubeconfig(user)
            .ok_or_else(|| Error::Kubeconfig(format!("the control plane has no user {user}")))?;
        let mut args: Vec<String> = self
            .kcm_args(name, "daemonset-controller", node_lease_seconds)?
            .into_iter()
            .map(|a| {
                if a.starts_with("--kubeconfig=") {
                    format!("--kubeconfig={}", kubeconfig.display())
                } else {
                    a
                }
            })
            .collect();
        if let Some((qps, burst)) = qps_burst {
            args.push(format!("--kube-api-qps={qps}"));
            args.push(format!("--kube-api-burst={burst}"));
        }
        self.spawn_extra(name, "kube-controller-manager", &args)
    }

    /// Starts one more process from the control-plane binaries (for example a second
    /// kube-controller-manager running only the upstream DaemonSet controller). The caller owns it.
    pub fn spawn_extra(&self, name: &str, binary: &str, args: &[String]) -> Result<Process, Error> {
        let log = self.log(name);
        Process::spawn(name, &self.binaries.path(binary), args, &log)
            .map_err(|e| Error::io(&log, e))
    }

    /// Stops the named component (by its PID); it can be restarted with [`ControlPlane::spawn_extra`].
    pub fn stop_component(&self, name: &str) {
        if let Ok(mut procs) = self.processes.lock() {
            for p in procs.iter_mut().filter(|p| p.name() == name) {
                p.stop(Duration::from_secs(10));
            }
            procs.retain(|p| p.name() != name);
        }
    }

    /// Waits (up to 120 s) until the API server answers `/readyz` with `ok`.
    async fn wait_apiserver_ready(&self, client: &kube::Client) -> Result<(), Error> {
        let client = client.clone();
        self.wait_ready("kube-apiserver", Duration::from_secs(120), move || {
            let client = client.clone();
            async move {
                let req = http::Request::get("/readyz").body(Vec::new());
                match req {
                    Ok(req) => client
                        .request_text(req)
                        .await
                        .is_ok_and(|t| t.trim() == "ok"),
                    Err(_) => false,
                }
            }
        })
        .await
    }

    /// The PID of a running component (`etcd`, `kube-apiserver`, ...).
    pub fn component_pid(&self, name: &str) -> Option<u32> {
        let procs = self.processes.lock().ok()?;
        procs.iter().find(|p| p.name() == name).map(Process::pid)
    }

    /// Kills a component with SIGKILL (no grace, as a crash would) and starts it again with the same
    /// program, arguments, environment, ports and data, appending to the same log; then waits until it
    /// is ready again (`etcd`: healthy, `kube-apiserver`: `/readyz` ok, others: still running after
    /// a second). Returns how long it was down, from the kill to ready.
    pub async fn restart_component(&self, name: &str) -> Result<Duration, Error> {
        let killed = Instant::now();
        {
            let mut procs = self
                .processes
                .lock()
                .map_err(|_| Error::NoComponent(name.into()))?;
            let p = procs
                .iter_mut()
                .find(|p| p.name() == name)
                .ok_or_else(|| Error::NoComponent(name.into()))?;
            p.kill();
            let fresh = p.respawn().map_err(|e| Error::io(&self.log(name), e))?;
            *p = fresh;
        }
        match name {
            "etcd" => {
                let port = self.etcd_port;
                self.wait_ready("etcd", Duration::from_secs(60), || async move {
                    etcd_healthy(port)
                })
                .await?
            }
            "kube-apiserver" => {
                let client = self.client().await?;
                self.wait_apiserver_ready(&client).await?
            }
            _ => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut procs = self
                    .processes
                    .lock()
                    .map_err(|_| Error::NoComponent(name.into()))?;
                if let Some(p) = procs.iter_mut().find(|p| p.name() == name)
                    && let Some(status) = p.exited()
                {
                    return Err(Error::Exited {
                        component: name.into(),
                        status: status.to_string(),
                        log: self.log(name),
                    });
                }
            }
        }
        Ok(killed.elapsed())
    }

    /// Starts kube-scheduler (with its default client-side limit when `limit` is `None`, else from a
    /// KubeSchedulerConfiguration with that QPS and burst) and waits until `/healthz` says `ok`.
    async fn start_scheduler(&self, limit: Option<ClientLimit>) -> Result<(), Error> {
        let port = free_port()?;
        let mut args = vec![
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", self.dir.join("certs").display()),
        ];
        match limit {
            None => args.extend([
                format!("--kubeconfig={}", self.kubeconfig.display()),
                "--leader-elect=false".into(),
            ]),
            Some(limit) => {
                // With --config, kube-scheduler ignores --kubeconfig and --leader-elect: both go in it.
                let config = self.dir.join("kube-scheduler-config.yaml");
                std::fs::write(&config, scheduler_config(&self.kubeconfig, limit))
                    .map_err(|e| Error::io(&config, e))?;
                args.push(format!("--config={}", config.display()));
            }
        }
        let p = self.spawn_extra("kube-scheduler", "kube-scheduler", &args)?;
        if let Ok(mut procs) = self.processes.lock() {
            procs.push(p);
        }
        let health = insecure_client(&format!("https://127.0.0.1:{port}"))?;
        self.wait_ready("kube-scheduler", Duration::from_secs(60), move || {
            let health = health.clone();
            async move {
                match http::Request::get("/healthz").body(Vec::new()) {
                    Ok(req) => health
                        .request_text(req)
                        .await
                        .is_ok_and(|t| t.trim() == "ok"),
                    Err(_) => false,
                }
            }
        })
        .await
    }

    /// Stops kube-scheduler and starts it again with another client-side limit (see
    /// [`Options::scheduler_client_limit`]); returns once it is healthy. Pods created meanwhile wait.
    pub async fn set_scheduler_client_limit(
        &self,
        limit: Option<ClientLimit>,
    ) -> Result<(), Error> {
        self.stop_component("kube-scheduler");
        self.start_scheduler(limit).await
    }

    /// Freezes a component with SIGSTOP: its sockets stay open and nothing is answered, as with a
    /// hung process or a stalled disk. [`ControlPlane::resume_component`] continues it.
    pub fn pause_component(&self, name: &str) -> Result<(), Error> {
        self.signal_component(name, Process::pause)
    }

    /// SIGCONT to a component paused by [`ControlPlane::pause_component`].
    pub fn resume_component(&self, name: &str) -> Result<(), Error> {
        self.signal_component(name, Process::resume)
    }

    fn signal_component(&self, name: &str, f: fn(&mut Process) -> bool) -> Result<(), Error> {
        let mut procs = self
            .processes
            .lock()
            .map_err(|_| Error::NoComponent(name.into()))?;
        let delivered = procs.iter_mut().find(|p| p.name() == name).is_some_and(f);
        if delivered {
            Ok(())
        } else {
            Err(Error::NoComponent(name.into()))
        }
    }

    /// A new serving certificate for 127.0.0.1 and localhost signed by the control plane's CA
    /// (which every kubeconfig of this control plane trusts): `(cert, key)` PEM files named `name`.
    pub fn issue_serving_cert(&self, name: &str) -> Result<(PathBuf, PathBuf), Error> {
        pki::issue_serving_cert(
            &self.pki,
            &self.dir.join("pki"),
            name,
            &["127.0.0.1", "localhost"],
        )
    }

    /// Writes a kubeconfig named `name` in the instance folder for `server` (e.g. a proxy in front of
    /// the API server) with the credentials of `user` (one of [`Options::users`]; the admin when
    /// `None`) and this control plane's CA; returns its path.
    pub fn kubeconfig_via(
        &self,
        name: &str,
        server: &str,
        user: Option<&str>,
    ) -> Result<PathBuf, Error> {
        let token = match user {
            None => self.pki.admin_token.clone(),
            Some(u) => self
                .pki
                .user_tokens
                .iter()
                .find(|(name, _)| name == u)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| Error::Kubeconfig(format!("no user {u} in Options::users")))?,
        };
        let path = self.dir.join(format!("kubeconfig-{name}"));
        write_kubeconfig(&path, server, &self.pki.ca_cert, &token)?;
        Ok(path)
    }

    /// Stops every process, newest first.
    pub fn stop(&self) {
        if let Ok(mut procs) = self.processes.lock() {
            while let Some(mut p) = procs.pop() {
                p.stop(Duration::from_secs(10));
            }
        }
    }

    fn spawn(&mut self, name: &str, args: &[String]) -> Result<(), Error> {
        let p = self.spawn_extra(name, name, args)?;
        if let Ok(mut procs) = self.processes.lock() {
            procs.push(p);
        }
        Ok(())
    }

    async fn wait_ready<F, Fut>(
        &self,
        component: &str,
        timeout: Duration,
        check: F,
    ) -> Result<(), Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        let log = self.log(component);
        loop {
            if check().await {
                return Ok(());
            }
            if let Ok(mut procs) = self.processes.lock()
                && let Some(p) = procs.iter_mut().find(|p| p.name() == component)
                && let Some(status) = p.exited()
            {
                return Err(Error::Exited {
                    component: component.into(),
                    status: status.to_string(),
                    log,
                });
            }
            if start.elapsed() > timeout {
                return Err(Error::NotReady {
                    component: component.into(),
                    seconds: timeout.as_secs(),
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Applies the CRDs of `paths` (files, or folders whose `*.yaml` files are taken in name order)
    /// with `kubectl apply --server-side` and waits until each is Established.
    async fn install_crds(&self, paths: &[PathBuf]) -> Result<(), Error> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| Error::io(path, e))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                    .collect();
                found.sort();
                files.extend(found);
            } else {
                files.push(path.clone());
            }
        }
        for file in files {
            let file_arg = format!("--filename={}", file.display());
            for args in [
                vec!["apply", "--server-side", "--force-conflicts", &file_arg],
                vec![
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    &file_arg,
                ],
            ] {
                let out = tokio::process::Command::new(self.binaries.path("kubectl"))
                    .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
                    .args(&args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .map_err(|e| Error::io(&self.binaries.path("kubectl"), e))?;
                if !out.status.success() {
                    return Err(Error::Crd {
                        path: file.clone(),
                        why: format!(
                            "kubectl {} exited with {}: {}",
                            args[0],
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn write_kwok_stages(&self) -> Result<PathBuf, Error> {
        let src = self.binaries.kwok_stages();
        let mut all = String::new();
        for f in [
            "node-initialize.yaml",
            "node-heartbeat-with-lease.yaml",
            "pod-ready.yaml",
            "pod-complete.yaml",
            "pod-delete.yaml",
        ] {
            let path = src.join(f);
            let mut text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            if f == "pod-ready.yaml" {
                // Pods labelled NEVER_READY_LABEL stay Pending and never Ready: stuck rollouts in
                // tests. Pods labelled CRASH_LOOP_LABEL are left to the pod-crash-loop stage.
                let marker = "    matchExpressions:\n";
                let mut extra = marker.to_string();
                for label in [NEVER_READY_LABEL, CRASH_LOOP_LABEL] {
                    extra.push_str(&format!(
                        "    - key: '.metadata.labels[\"{label}\"]'\n      operator: 'DoesNotExist'\n"
                    ));
                }
                text = text.replacen(marker, &extra, 1);
            }
            all.push_str(&text);
            all.push_str("\n---\n");
        }
        all.push_str(&pod_crash_loop_stage());
        let out = self.dir.join("kwok-stages.yaml");
        std::fs::write(&out, all).map_err(|e| Error::io(&out, e))?;
        Ok(out)
    }
}

/// The kwok stage `pod-crash-loop`: a live pod labelled [`CRASH_LOOP_LABEL`] is made Running with
/// Ready and ContainersReady False, and every container `waiting: CrashLoopBackOff` after a
/// terminated `Error` run, its `restartCount` one more than before. kwok plays the stage again on
/// each of its own status changes (after a second's delay), so the count keeps rising, as a kubelet's
/// would (without the back-off). Host and pod IPs are assigned on the first play only: a second
/// assignment would add a second IP of the same family, which the API server rejects.
fn pod_crash_loop_stage() -> String {
    format!(
        r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-crash-loop
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels["{CRASH_LOOP_LABEL}"]'
      operator: 'Exists'
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
      - 'Running'
  delay:
    durationMilliseconds: 1000
  next:
    event:
      type: Warning
      reason: BackOff
      message: Back-off restarting failed container
    statusTemplate: |
      {{{{ $now := Now }}}}
      {{{{ $statuses := or .status.containerStatuses list }}}}
      conditions:
      - lastTransitionTime: {{{{ or .status.startTime $now | Quote }}}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        message: "containers with unready status"
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        message: "containers with unready status"
        type: ContainersReady
      containerStatuses:
      {{{{ range $index, $item := .spec.containers }}}}
      {{{{ $restarts := 0 }}}}
      {{{{ if lt $index (len $statuses) }}}}
      {{{{ $restarts = or (index $statuses $index).restartCount 0 }}}}
      {{{{ end }}}}
      - image: {{{{ $item.image | Quote }}}}
        name: {{{{ $item.name | Quote }}}}
        ready: false
        started: false
        restartCount: {{{{ add1 $restarts }}}}
        lastState:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{{{ $now | Quote }}}}
            finishedAt: {{{{ $now | Quote }}}}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: {{{{ printf "back-off restarting failed container %s" $item.name | Quote }}}}
      {{{{ end }}}}
      {{{{ if not .status.podIP }}}}
      {{{{ $hostIPs := NodeIPsWith .spec.nodeName }}}}
      {{{{ with $hostIPs }}}}
      hostIP: {{{{ index . 0 | Quote }}}}
      hostIPs:
      {{{{ range . }}}}
      - ip: {{{{ . | Quote }}}}
      {{{{ end }}}}
      {{{{ end }}}}
      {{{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}}}
      {{{{ with $podIPs }}}}
      podIP: {{{{ index . 0 | Quote }}}}
      podIPs:
      {{{{ range . }}}}
      - ip: {{{{ . | Quote }}}}
      {{{{ end }}}}
      {{{{ end }}}}
      {{{{ end }}}}
      phase: Running
      startTime: {{{{ or .status.startTime $now | Quote }}}}
"#
    )
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client for a component's own HTTPS health endpoint (self-signed certificate, no credentials).
fn insecure_client(url: &str) -> Result<kube::Client, Error> {
    let uri = url
        .parse()
        .map_err(|e| Error::Kubeconfig(format!("{url}: {e}")))?;
    let mut config = kube::Config::new(uri);
    config.accept_invalid_certs = true;
    Ok(kube::Client::try_from(config)?)
}

/// An audit policy logging the requests of `users` at Metadata level and nothing else. The
/// RequestReceived stage is omitted: one event per request (ResponseComplete), plus ResponseStarted for
/// long-running requests such as watches.
fn audit_policy(users: &[String]) -> String {
    let users = serde_json::to_string(users).unwrap_or_else(|_| "[]".into());
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\"]\nrules:\n- level: Metadata\n  users: {users}\n- level: None\n"
    )
}

fn write_kubeconfig(path: &Path, server: &str, ca: &Path, token: &str) -> Result<(), Error> {
    let kc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "everynode-local", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "everynode-local", "context": {"cluster": "everynode-local", "user": "admin"}}],
        "current-context": "everynode-local",
    });
    std::fs::write(path, kc.to_string()).map_err(|e| Error::io(path, e))
}
