//! Construction of the Kubernetes client: kube-rs's stack on a transport that speaks HTTP/2 when
//! the server offers it (as client-go does), with retries of idempotent requests only
//! ([`super::retry`]), a timeout on every attempt, a client-side rate limit
//! (kube-controller-manager's `--kube-api-qps`/`--kube-api-burst`) and the API request metrics.
//!
//! The layers, outermost first: base URI, retry, rate limit, metrics, per-attempt timeout,
//! authentication, extra headers, transport. Retries sit outside the rate limit and the metrics, so
//! every attempt waits for a token of its own and is counted.

use super::metrics::{Metrics, RequestLabels, request_code, request_verb};
use super::retry::{Outcome, RetryBudget, next_attempt};
use super::token_bucket::TokenBucket;
use futures::future::BoxFuture;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Instant as MonotonicInstant;
use tower::{Layer, Service, ServiceExt};

/// Client-side rate limit of API requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub qps: f32,
    pub burst: u32,
}

impl RateLimit {
    /// `qps` 0 (or negative) means no client-side limit.
    pub fn new(qps: f32, burst: u32) -> Option<Self> {
        (qps > 0.0).then_some(Self { qps, burst })
    }
}

/// The User-Agent of every request, `everynode/<version> (<os>/<arch>)`, as client-go's
/// `<binary>/<version> (<os>/<arch>)`. The API server takes the part before the first `/` as the field
/// manager of writes that name none; everynode names `everynode` on every write as well.
pub fn user_agent() -> String {
    format!(
        "everynode/{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Builds a client from `config`: each attempt of a request first waits for the rate limit (if
/// any, a token bucket of this client's own), then is counted and timed in `metrics` under the label
/// `client="{name}"`; failed requests are retried as [`super::retry`] allows, within `budget`.
pub fn build(
    mut config: kube::Config,
    metrics: Arc<Metrics>,
    limit: Option<RateLimit>,
    name: &'static str,
    budget: RetryBudget,
) -> Result<kube::Client, kube::Error> {
    // everynode's transport speaks to the API server directly; kube's proxy support needs a Cargo
    // feature everynode does not build with, and would bypass the retry rules below.
    if let Some(proxy_url) = config.proxy_url.clone() {
        return Err(kube::Error::ProxyProtocolDisabled {
            proxy_url: Box::new(proxy_url),
            protocol_feature: "kube/http-proxy (everynode does not support proxies; unset proxy-url in the kubeconfig)",
        });
    }
    config
        .headers
        .retain(|(name, _)| name != http::header::USER_AGENT);
    if let Ok(agent) = http::HeaderValue::from_str(&user_agent()) {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    let metrics = MetricsLayer {
        metrics,
        client: name,
    };
    let limit =
        limit.map(|l| RateLimitLayer::new(l).observed_by(metrics.metrics.clone(), metrics.client));
    Ok(kube::client::ClientBuilder::new(
        stack(&config, metrics, limit, budget)?,
        config.default_namespace,
    )
    .build())
}

/// One sentence on why a request to the API server at `server` failed, naming the kubeconfig's
/// `user`: refused credentials (401), a forbidden request (403, with the API server's message, which
/// names the identity), no connection, a TLS failure, or no answer. No debug dumps.
pub fn explain_api_error(e: &kube::Error, server: &str, user: &str) -> String {
    if let kube::Error::Api(status) = e {
        return match status.code {
            401 => format!(
                "the API server at {server} refused the credentials of user {user:?} from the kubeconfig (401 Unauthorized): check its token or client certificate"
            ),
            403 => format!(
                "the API server at {server} forbids it (403 Forbidden): {}; grant the ClusterRole of deploy/everynode.yaml",
                status.message
            ),
            code => format!(
                "the API server at {server} answered {code}: {}",
                status.message
            ),
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("connection refused") {
        format!(
            "cannot connect to the API server at {server}: connection refused (is it running, and is the server address in the kubeconfig right?)"
        )
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        let reason = text
            .rsplit(": ")
            .next()
            .unwrap_or(text.as_str())
            .to_string();
        format!(
            "the TLS handshake with the API server at {server} failed: {reason} (does the kubeconfig's certificate-authority match the server's certificate?)"
        )
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        format!(
            "cannot resolve the API server's host in {server}: check the server address in the kubeconfig"
        )
    } else if lower.contains("timed out") || lower.contains("no response") {
        format!("no answer from the API server at {server} in time: is it reachable from here?")
    } else {
        format!("cannot talk to the API server at {server}: {text}")
    }
}

/// The transport under kube's `Client`.
type Transport = tower::util::BoxService<
    Request<kube::client::Body>,
    Response<hyper::body::Incoming>,
    tower::BoxError,
>;

/// How often an idle HTTP/2 connection is pinged, and how long a ping may go unanswered before the
/// connection is dropped: client-go's `ReadIdleTimeout` and `PingTimeout`. Without pings a watch on
/// a silently dead connection would wait forever.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP/2 connection's receive window: client-go's (`transportDefaultConnFlow` of Go's http2
/// transport, 1 GiB), where hyper's default is 5 MiB. Every request of the controller shares the
/// connection, and data a watch has received but its reader has not consumed yet holds the
/// connection window as well as its stream's (2 MiB each, hyper's default). With 5 MiB, three
/// watches lagging behind a burst of events (the pod watch while thousands of pods are created,
/// the node watch) used it up, and then no create, delete or status response could arrive until
/// they caught up: every request of the controller waited for its slowest watch. With the window
/// larger than the sum of the stream windows, a lagging watch holds up only itself.
/// `tests/client.rs` shows it on the real control plane.
const HTTP2_CONNECTION_WINDOW: u32 = 1 << 30;

/// kube's default stack (base URI, authentication, extra headers, connect timeout) over a TLS
/// connector that offers HTTP/2 by ALPN and falls back to HTTP/1.1, with everynode's retry, rate
/// limit, metrics and per-attempt timeout.
///
/// kube-rs's `ClientBuilder` builds an HTTP/1.1 connector only; the transport here is the kept
/// crates (hyper-util's client over hyper-rustls with ALPN), only their wiring is by hand.
/// kube-rs speaks HTTP/1.1 only, so a burst of N concurrent creates opens up to N TLS connections,
/// and each slow-start batch of a sync waits for new handshakes. client-go multiplexes every request
/// of a controller over one HTTP/2 connection; so does this.
fn stack(
    config: &kube::Config,
    metrics: MetricsLayer,
    limit: Option<RateLimitLayer>,
    budget: RetryBudget,
) -> Result<Transport, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // As Go's net package does for client-go: without TCP_NODELAY, Nagle's algorithm holds a
    // request's body frame until the API server acknowledges its header frame, and the server's
    // delayed ACK makes every request with a body (create, patch, delete) wait about 40 ms.
    http.set_nodelay(true);
    let tls = config.rustls_client_config()?;
    let mut https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = config.tls_server_name.as_ref() {
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(kube::client::RustlsTlsError::InvalidServerName)
            .map_err(kube::Error::RustlsTls)?;
        https = https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let https = https.enable_all_versions().wrap_connector(http);
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let transport = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(HTTP2_PING_INTERVAL)
        .http2_keep_alive_timeout(HTTP2_PING_TIMEOUT)
        .http2_initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .build(connector);
    let authenticated = ServiceBuilder::new()
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(transport);
    Ok(ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .service(with_attempt_layers(authenticated, metrics, limit, budget))
        .boxed())
}

/// `inner` (the authenticated transport) under the layers every attempt passes, outermost first:
/// retry, rate limit, metrics, per-attempt timeout.
fn with_attempt_layers<S, ResB>(
    inner: S,
    metrics: MetricsLayer,
    limit: Option<RateLimitLayer>,
    budget: RetryBudget,
) -> impl Service<
    Request<kube::client::Body>,
    Response = Response<ResB>,
    Error = tower::BoxError,
    Future = BoxFuture<'static, Result<Response<ResB>, tower::BoxError>>,
> + Clone
+ Send
+ 'static
where
    S: Service<Request<kube::client::Body>, Response = Response<ResB>, Error = tower::BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ResB: Send + 'static,
{
    tower::ServiceBuilder::new()
        .layer(RetryLayer { budget })
        .option_layer(limit)
        .layer(metrics)
        .layer(AttemptTimeoutLayer {
            timeout: budget.attempt_timeout,
        })
        .service(inner)
}

/// Whether a request is a watch (its response is a stream that lasts minutes by design).
fn is_watch<B>(req: &Request<B>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// How an attempt's result counts for [`next_attempt`].
fn outcome<B>(result: &Result<Response<B>, tower::BoxError>) -> Outcome {
    match result {
        Ok(response) => Outcome::Status {
            code: response.status().as_u16(),
            retry_after: response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
        },
        Err(e) => {
            let connect = e
                .downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(|e| e.is_connect());
            if connect {
                Outcome::ConnectFailed
            } else {
                Outcome::Failed
            }
        }
    }
}

/// Sends a request again as [`next_attempt`] allows. Each attempt goes through the inner layers (rate
/// limit, metrics, timeout) again.
#[derive(Clone)]
struct RetryLayer {
    budget: RetryBudget,
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            budget: self.budget,
        }
    }
}

#[derive(Clone)]
struct RetryService<S> {
    inner: S,
    budget: RetryBudget,
}

/// A copy of `req` to send again, if its body can be copied (every body kube sends can).
fn copy_request(req: &Request<kube::client::Body>) -> Option<Request<kube::client::Body>> {
    let mut copy = Request::new(req.body().try_clone()?);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

impl<S, ResB> Service<Request<kube::client::Body>> for RetryService<S>
where
    S: Service<Request<kube::client::Body>, Response = Response<ResB>, Error = tower::BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each attempt waits for the inner service (the rate limit) in the call's future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let budget = self.budget;
        Box::pin(async move {
            let start = MonotonicInstant::now();
            let method = req.method().clone();
            let mut req = req;
            let mut attempt = 1;
            loop {
                let again = copy_request(&req);
                let result = inner.ready().await?.call(req).await;
                let wait =
                    next_attempt(&method, outcome(&result), attempt, start.elapsed(), &budget);
                match (wait, again) {
                    (Some(wait), Some(again)) => {
                        tokio::time::sleep(wait).await;
                        req = again;
                        attempt += 1;
                    }
                    _ => return result,
                }
            }
        })
    }
}

/// Bounds one attempt (up to its response headers) by a timeout; watches are not bounded.
#[derive(Clone)]
struct AttemptTimeoutLayer {
    timeout: Duration,
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
struct AttemptTimeout<S> {
    inner: S,
    timeout: Duration,
}

/// An attempt that got no response within its timeout.
#[derive(Debug, thiserror::Error)]
#[error("no response from the API server within {0:?}")]
pub struct AttemptTimedOut(Duration);

impl<S, ReqB, ResB> Service<Request<ReqB>> for AttemptTimeout<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let limit = (!is_watch(&req)).then_some(self.timeout);
        let fut = self.inner.call(req);
        Box::pin(async move {
            match limit {
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(result) => result.map_err(Into::into),
                    Err(_) => Err(Box::new(AttemptTimedOut(limit)) as tower::BoxError),
                },
                None => fut.await.map_err(Into::into),
            }
        })
    }
}

/// Counts and times every request by client, verb and status code.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    client: &'static str,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
            client: self.client,
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    client: &'static str,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for MetricsService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let verb = request_verb(req.method(), req.uri().query());
        let metrics = self.metrics.clone();
        let client = self.client;
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            let code = request_code(result.as_ref().ok().map(|r| r.status()));
            metrics.api_request(
                &RequestLabels {
                    client: client.to_string(),
                    verb,
                    code,
                },
                start.elapsed(),
            );
            result
        })
    }
}

/// The shared token bucket and the monotonic origin of its clock.
struct Bucket {
    /// tokio's clock, so that tests can pause it.
    origin: MonotonicInstant,
    bucket: Mutex<TokenBucket>,
    /// Where each reservation's wait is recorded.
    observer: Option<(Arc<Metrics>, &'static str)>,
}

impl Bucket {
    /// Reserves a token now; returns how long to wait for it (and records that wait).
    fn reserve(&self) -> Duration {
        let now = self.origin.elapsed();
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(now);
        if let Some((metrics, client)) = &self.observer {
            metrics.rate_limited(client, wait);
        }
        wait
    }
}

/// Holds every request until the token bucket grants it. kube's `Client` drives its stack from one
/// buffer worker, so waiting in `poll_ready` delays requests in arrival order.
#[derive(Clone)]
pub struct RateLimitLayer {
    bucket: Arc<Bucket>,
}

impl RateLimitLayer {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            bucket: Arc::new(Bucket {
                origin: MonotonicInstant::now(),
                bucket: Mutex::new(TokenBucket::new(f64::from(limit.qps), limit.burst)),
                observer: None,
            }),
        }
    }

    /// Records each request's wait in `everynode_rate_limiter_duration_seconds{client}`.
    pub fn observed_by(self, metrics: Arc<Metrics>, client: &'static str) -> Self {
        let bucket = match Arc::try_unwrap(self.bucket) {
            Ok(mut b) => {
                b.observer = Some((metrics, client));
                b
            }
            Err(shared) => return Self { bucket: shared },
        };
        Self {
            bucket: Arc::new(bucket),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            bucket: self.bucket.clone(),
            state: Permit::None,
        }
    }
}

enum Permit {
    /// No token reserved yet.
    None,
    /// A token is reserved; it becomes usable when the sleep ends.
    Waiting(Pin<Box<tokio::time::Sleep>>),
    /// A token is usable by the next `call`.
    Ready,
}

pub struct RateLimitService<S> {
    inner: S,
    bucket: Arc<Bucket>,
    state: Permit,
}

impl<S: Clone> Clone for RateLimitService<S> {
    /// A copy shares the bucket but holds no token: it reserves its own when polled.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bucket: self.bucket.clone(),
            state: Permit::None,
        }
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                Permit::None => {
                    let wait = self.bucket.reserve();
                    self.state = if wait.is_zero() {
                        Permit::Ready
                    } else {
                        Permit::Waiting(Box::pin(tokio::time::sleep(wait)))
                    };
                }
                Permit::Waiting(sleep) => match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => self.state = Permit::Ready,
                    Poll::Pending => return Poll::Pending,
                },
                Permit::Ready => return self.inner.poll_ready(cx),
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // Each call spends the token its poll_ready obtained.
        self.state = Permit::None;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[test]
    fn qps_zero_means_no_limit() {
        assert_eq!(RateLimit::new(0.0, 30), None);
        assert_eq!(
            RateLimit::new(20.0, 30),
            Some(RateLimit {
                qps: 20.0,
                burst: 30
            })
        );
    }

    /// The layer really holds requests: 5 requests at 10 qps with burst 2 take 300 ms of (paused,
    /// virtual) tokio time, and each one is served once.
    #[tokio::test(start_paused = true)]
    async fn the_layer_spaces_requests_beyond_the_burst() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        let svc = tower::service_fn(move |n: u32| {
            let c = c.clone();
            async move {
                c.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((n, start.elapsed()));
                Ok::<_, std::convert::Infallible>(n)
            }
        });
        let mut svc = RateLimitLayer::new(RateLimit {
            qps: 10.0,
            burst: 2,
        })
        .layer(svc);
        for n in 0..5 {
            let Ok(ready) = svc.ready().await;
            let Ok(out) = ready.call(n).await;
            assert_eq!(out, n);
        }
        let calls = calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let at: Vec<u128> = calls.iter().map(|(_, t)| t.as_millis()).collect();
        assert_eq!(at, vec![0, 0, 100, 200, 300]);
    }

    /// Retries sit outside the rate limit: every attempt waits for a token of its own (1 qps, burst
    /// 1: the attempts go out 1 s apart, not after the 100 ms and 200 ms backoffs), and a GET
    /// answered 503 twice is sent three times; a POST answered 504 is sent once.
    #[tokio::test(start_paused = true)]
    async fn each_attempt_spends_a_token_and_only_idempotent_requests_are_retried() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        let transport = tower::service_fn(move |req: Request<kube::client::Body>| {
            let c = c.clone();
            async move {
                let mut calls = c.lock().unwrap_or_else(|e| e.into_inner());
                calls.push((req.method().clone(), start.elapsed().as_millis()));
                let code = if calls.len() < 3 { 503 } else { 200 };
                let code = if req.method() == http::Method::POST {
                    504
                } else {
                    code
                };
                Ok::<_, tower::BoxError>(
                    Response::builder()
                        .status(code)
                        .body(())
                        .unwrap_or_default(),
                )
            }
        });
        let metrics = Arc::new(Metrics::new());
        let mut svc = with_attempt_layers(
            transport,
            MetricsLayer {
                metrics: metrics.clone(),
                client: "test",
            },
            Some(RateLimitLayer::new(RateLimit { qps: 1.0, burst: 1 })),
            RetryBudget::CONTROLLER,
        );
        let get = Request::get("/api/v1/pods").body(kube::client::Body::from(Vec::new()));
        let get = get.expect("request");
        let response = svc.ready().await.ok().map(|s| s.call(get));
        let status = match response {
            Some(f) => f.await.map(|r| r.status().as_u16()).ok(),
            None => None,
        };
        assert_eq!(status, Some(200));
        let post = Request::post("/api/v1/namespaces/n/pods")
            .body(kube::client::Body::from(b"{}".to_vec()));
        let post = post.expect("request");
        let response = svc.ready().await.ok().map(|s| s.call(post));
        let status = match response {
            Some(f) => f.await.map(|r| r.status().as_u16()).ok(),
            None => None,
        };
        assert_eq!(status, Some(504));
        let calls = calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            calls,
            vec![
                (http::Method::GET, 0),
                (http::Method::GET, 1000),
                (http::Method::GET, 2000),
                (http::Method::POST, 3000),
            ]
        );
        let text = metrics.encode().unwrap_or_default();
        for counted in [
            r#"client="test",verb="GET",code="503"} 2"#,
            r#"client="test",verb="GET",code="200"} 1"#,
            r#"client="test",verb="POST",code="504"} 1"#,
        ] {
            assert!(text.contains(counted), "{counted} not in {text}");
        }
    }

    #[test]
    fn watches_are_told_apart_from_other_requests() {
        let req = |uri: &str| Request::get(uri).body(()).unwrap_or_default();
        assert!(is_watch(&req("/api/v1/pods?watch=true&resourceVersion=1")));
        assert!(is_watch(&req(
            "/api/v1/pods?allowWatchBookmarks=true&watch=1"
        )));
        assert!(!is_watch(&req("/api/v1/pods?limit=500")));
        assert!(!is_watch(&req("/api/v1/pods")));
    }
}
