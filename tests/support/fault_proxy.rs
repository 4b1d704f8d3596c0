//! A TLS fault proxy for tests: it sits between a client (everynode) and the real API server, serves
//! TLS on 127.0.0.1 with a certificate signed by the control plane's CA (so the client trusts it as
//! it trusts the API server), forwards every request to the API server over TLS with the client's own
//! credentials (the `Authorization` header passes through), and applies fault rules selected by
//! method and path: a status code after the request was forwarded and committed (a 504 on a pod POST
//! that did create the pod), a status code instead of forwarding (500, 429...), the connection closed
//! without an answer, or added latency. A rule fires at most `times` times and with a probability
//! drawn from a generator with a fixed seed, so a run is reproducible.
//!
//! Only HTTP/1.1 is offered by ALPN (clients that prefer HTTP/2 fall back), so every request is one
//! exchange on one connection and a fault touches exactly one request.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a rule does to a request it fires on.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forwards the request, waits for the API server's whole answer (so the request took effect),
    /// then answers the client with this status instead: the client sees a failure of a request
    /// that succeeded.
    StatusAfterForward(u16),
    /// Answers with this status without forwarding: the request never reaches the API server.
    Status(u16),
    /// Closes the connection without an answer and without forwarding.
    Reset,
    /// Waits this long, then forwards.
    Delay(Duration),
}

/// Which paths a rule matches.
#[derive(Clone, Debug, PartialEq)]
pub enum PathMatch {
    Any,
    /// The path (without the query) contains this text.
    Contains(String),
    /// The path (without the query) ends with this text, e.g. `/pods` for pod creates only.
    EndsWith(String),
}

/// One fault rule; the first rule (in order) that matches a request and fires applies to it.
#[derive(Clone, Debug)]
pub struct Rule {
    pub fault: Fault,
    pub method: Option<Method>,
    pub path: PathMatch,
    /// Fires at most this many times (`None`: no limit).
    pub times: Option<u32>,
    /// Fires on a matching request with this probability (1.0: always).
    pub probability: f64,
    /// Whether the rule also applies to watch requests (`watch=true` in the query); off by default.
    pub watches: bool,
}

impl Rule {
    /// A rule applying `fault` to every request (narrow it with the other methods).
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            method: None,
            path: PathMatch::Any,
            times: None,
            probability: 1.0,
            watches: false,
        }
    }

    pub fn method(mut self, m: Method) -> Self {
        self.method = Some(m);
        self
    }

    pub fn path_contains(mut self, s: &str) -> Self {
        self.path = PathMatch::Contains(s.to_string());
        self
    }

    pub fn path_ends_with(mut self, s: &str) -> Self {
        self.path = PathMatch::EndsWith(s.to_string());
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    pub fn with_watches(mut self) -> Self {
        self.watches = true;
        self
    }

    fn matches(&self, method: &Method, path: &str, watch: bool) -> bool {
        (self.watches || !watch)
            && self.method.as_ref().is_none_or(|m| m == method)
            && match &self.path {
                PathMatch::Any => true,
                PathMatch::Contains(s) => path.contains(s.as_str()),
                PathMatch::EndsWith(s) => path.ends_with(s.as_str()),
            }
    }
}

/// One request seen by the proxy.
#[derive(Clone, Debug)]
pub struct Record {
    pub method: Method,
    pub path: String,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// The status the API server answered (`None`: not forwarded, or no answer).
    pub upstream: Option<u16>,
    /// The status the client got (`None`: the connection was closed without an answer).
    pub answered: Option<u16>,
}

struct State {
    rules: Vec<(Rule, u32)>,
    rng: u64,
    records: Vec<Record>,
}

/// splitmix64: a tiny deterministic generator, enough for reproducible fault draws.
fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl State {
    /// The fault for this request, if a rule fires (consuming one of its `times`).
    fn decide(&mut self, method: &Method, path: &str, watch: bool) -> Option<Fault> {
        let State { rules, rng, .. } = self;
        for (rule, fired) in rules.iter_mut() {
            if !rule.matches(method, path, watch) || rule.times.is_some_and(|t| *fired >= t) {
                continue;
            }
            if rule.probability < 1.0 && next_random(rng) >= rule.probability {
                continue;
            }
            *fired += 1;
            return Some(rule.fault.clone());
        }
        None
    }
}

type Body = BoxBody<Bytes, hyper::Error>;
type Upstream = HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `upstream` (`https://127.0.0.1:<port>`),
    /// trusting `ca` for the upstream connection and serving `cert`/`key` (PEM files), with no rules
    /// yet and the random generator seeded with `seed`.
    pub async fn start(
        upstream: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
        seed: u64,
    ) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let key =
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("serving certificate: {e}"))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
            roots
                .add(c.map_err(|e| format!("{}: {e}", ca.display()))?)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let client_tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls)
            .https_only()
            .enable_http1()
            .build();
        let client: Upstream = HttpClient::builder(TokioExecutor::new()).build(https);
        let upstream: http::uri::Authority = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("upstream {upstream}: {e}"))?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(Mutex::new(State {
            rules: Vec::new(),
            rng: seed,
            records: Vec::new(),
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let client = client.clone();
                let upstream = upstream.clone();
                let st = st.clone();
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, client.clone(), upstream.clone(), st.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `https://127.0.0.1:<port>`, for a kubeconfig.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the rules (their fire counts start at 0).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.state().rules = rules.into_iter().map(|r| (r, 0)).collect();
    }

    /// How often each current rule fired, in rule order.
    pub fn fired(&self) -> Vec<u32> {
        self.state().rules.iter().map(|(_, n)| *n).collect()
    }

    /// Every request seen so far.
    pub fn records(&self) -> Vec<Record> {
        self.state().records.clone()
    }
}

fn status_body(code: u16) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("injected by the fault proxy: {code}"),
        "reason": if code == 504 { "Timeout" } else { "InternalError" },
        "code": code,
    })
    .to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

async fn handle(
    req: Request<Incoming>,
    client: Upstream,
    upstream: http::uri::Authority,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, String> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let fault = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .decide(&method, &path, watch);
    let record = |upstream: Option<u16>, answered: Option<u16>| {
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records
            .push(Record {
                method: method.clone(),
                path: path.clone(),
                fault: fault.clone(),
                upstream,
                answered,
            });
    };
    match &fault {
        Some(Fault::Status(code)) => {
            record(None, Some(*code));
            return Ok(status_body(*code));
        }
        Some(Fault::Reset) => {
            record(None, None);
            // An error from the service makes hyper close the connection without a response.
            return Err("injected connection reset".into());
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = http::Uri::builder()
        .scheme("https")
        .authority(upstream)
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| e.to_string())?;
    for h in HOP_BY_HOP {
        parts.headers.remove(h);
    }
    parts.version = http::Version::HTTP_11;
    let resp = match client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => {
            record(None, Some(502));
            let mut r = status_body(502);
            *r.body_mut() = Full::new(Bytes::from(format!("upstream: {e}")))
                .map_err(|never| match never {})
                .boxed();
            return Ok(r);
        }
    };
    let code = resp.status().as_u16();
    if let Some(Fault::StatusAfterForward(injected)) = fault {
        // Read the whole answer: the API server has committed the request.
        let _ = resp.into_body().collect().await;
        record(Some(code), Some(injected));
        return Ok(status_body(injected));
    }
    record(Some(code), Some(code));
    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(h);
    }
    Ok(Response::from_parts(parts, body.boxed()))
}

/// The faults `rules` would apply to this sequence of `(method, path)` requests with this seed,
/// without any network: the rule logic of the proxy, for its own tests.
pub fn plan(rules: &[Rule], seed: u64, requests: &[(Method, &str)]) -> Vec<Option<Fault>> {
    let mut state = State {
        rules: rules.iter().cloned().map(|r| (r, 0)).collect(),
        rng: seed,
        records: Vec::new(),
    };
    requests
        .iter()
        .map(|(m, p)| state.decide(m, p, false))
        .collect()
}
