//! Construction of the Kubernetes client: kube-rs's stack on a transport that speaks HTTP/2 when
//! the server offers it (as client-go does), plus two tower layers, a client-side rate limit
//! (kube-controller-manager's `--kube-api-qps`/`--kube-api-burst`) and the API request metrics.

use crate::core::token_bucket::TokenBucket;
use crate::metrics::{Metrics, RequestLabels, request_code, request_verb};
use futures::future::BoxFuture;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Instant as MonotonicInstant;
use tower::{Layer, Service};

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

/// Builds a client from `config`: requests first wait for the rate limit (if any, a token bucket of
/// this client's own), then are counted and timed in `metrics` under the label `client="{name}"`.
pub fn build(
    config: kube::Config,
    metrics: Arc<Metrics>,
    limit: Option<RateLimit>,
    name: &'static str,
) -> Result<kube::Client, kube::Error> {
    let metrics = MetricsLayer {
        metrics,
        client: name,
    };
    let limit = limit.map(RateLimitLayer::new);
    // Through a proxy, kube's own HTTP/1.1 stack (which knows proxies).
    if config.proxy_url.is_some() {
        let builder = kube::client::ClientBuilder::try_from(config)?.with_layer(&metrics);
        return Ok(match limit {
            Some(limit) => builder.with_layer(&limit).build(),
            None => builder.build(),
        });
    }
    let builder = http2_builder(config)?.with_layer(&metrics);
    Ok(match limit {
        Some(limit) => builder.with_layer(&limit).build(),
        None => builder.build(),
    })
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

/// kube's default stack (base URI, retries of 5xx and 429, authentication, extra headers, timeouts)
/// over a TLS connector that offers HTTP/2 by ALPN and falls back to HTTP/1.1.
///
/// kube-rs speaks HTTP/1.1 only, so a burst of N concurrent creates opens up to N TLS connections,
/// and each slow-start batch of a sync waits for new handshakes. client-go multiplexes every request
/// of a controller over one HTTP/2 connection; so does this.
fn http2_builder(
    config: kube::Config,
) -> Result<kube::client::ClientBuilder<Transport>, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use kube::client::ConfigExt;
    use kube::client::retry::RetryPolicy;
    use tower::retry::RetryLayer;
    use tower::{ServiceBuilder, ServiceExt};

    let mut http = HttpConnector::new();
    http.enforce_http(false);
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
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(transport)
        .boxed();
    Ok(kube::client::ClientBuilder::new(
        service,
        config.default_namespace,
    ))
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
}

impl Bucket {
    /// Reserves a token now; returns how long to wait for it.
    fn reserve(&self) -> Duration {
        let now = self.origin.elapsed();
        self.bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(now)
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
            }),
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
}
