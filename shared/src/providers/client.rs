//! The HTTP client every upstream call goes through: hyper's pooled HTTP/1.1 client over rustls
//! (the platform's roots), reaching providers directly or through the proxy the environment names
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as curl reads them).
//!
//! Ours rather than reqwest's: reqwest re-parsed every request's and every response's URL in its
//! redirect layer even with redirects off, and wrapped each call in a retry layer — ~9 % of the
//! gateway's instructions per request. Redirects are never followed here: a provider's base URL is
//! where its key goes, and a redirect would carry the key (or the prompt) somewhere else.

use bytes::Bytes;
use futures::Stream;
use http::header::{HeaderName, HeaderValue, PROXY_AUTHORIZATION, USER_AGENT};
use http::uri::Scheme;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_platform_verifier::ConfigVerifierExt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Building the client failed: the platform's TLS roots could not be read.
#[derive(Debug, thiserror::Error)]
#[error("TLS setup failed: {0}")]
pub struct HttpClientError(#[from] rustls::Error);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection: refused, DNS, TLS, the proxy.
    #[error("connection failed")]
    Connect,
    /// Connected, but the exchange broke before the answer's headers.
    #[error("connection broke before the answer")]
    Broken,
    /// The request itself cannot be sent (a URL or a header value that is not valid).
    #[error("the request is not valid: {0}")]
    Invalid(&'static str),
}

/// The shared upstream client; cloning shares its connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
    proxies: Arc<Matcher>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

const AGENT: &str = concat!("freerouter/", env!("CARGO_PKG_VERSION"));

impl HttpClient {
    /// A client with `connect_timeout` per connection, `TCP_NODELAY` (streams), idle connections
    /// kept 60 s (64 per host), and no overall timeout: the routing engine owns the deadlines.
    pub fn new(connect_timeout: Duration) -> Result<Self, HttpClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = rustls::ClientConfig::with_platform_verifier()?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let proxies = Arc::new(Matcher::from_env());
        let connector = Connector {
            tcp,
            tls: Arc::new(tls),
            proxies: proxies.clone(),
        };
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(Self { inner, proxies })
    }

    /// A POST to `url`.
    pub fn post(&self, url: &str) -> UpstreamRequest {
        UpstreamRequest::new(Method::POST, url)
    }

    /// A GET of `url`.
    pub fn get(&self, url: &str) -> UpstreamRequest {
        UpstreamRequest::new(Method::GET, url)
    }

    /// Sends `request` and waits for the answer's headers.
    pub async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, SendError> {
        let UpstreamRequest {
            method,
            uri,
            mut headers,
            body,
            invalid,
        } = request;
        if let Some(why) = invalid {
            return Err(SendError::Invalid(why));
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        }
        if uri.scheme() == Some(&Scheme::HTTP) {
            // Through a proxy a plain-http request goes whole, so its credentials go with it; an
            // https request is tunnelled and the tunnel carries them (`Connector::connect`).
            if let Some(auth) = self
                .proxies
                .intercept(&uri)
                .and_then(|proxy| proxy.basic_auth().cloned())
            {
                headers.insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let mut outgoing = http::Request::new(Full::new(body));
        *outgoing.method_mut() = method;
        *outgoing.uri_mut() = uri;
        *outgoing.headers_mut() = headers;
        match self.inner.request(outgoing).await {
            Ok(response) => {
                let (head, body) = response.into_parts();
                Ok(UpstreamResponse { head, body })
            }
            Err(e) if e.is_connect() => Err(SendError::Connect),
            Err(_) => Err(SendError::Broken),
        }
    }
}

/// A request being built: headers are added one by one, as adapters need.
#[derive(Debug)]
pub struct UpstreamRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// Why it cannot be sent (a URL or a header value that is not valid), found while building.
    invalid: Option<&'static str>,
}

impl UpstreamRequest {
    fn new(method: Method, url: &str) -> Self {
        let (uri, invalid) = match url.parse::<Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => (uri, None),
            _ => (
                Uri::default(),
                Some("the provider's URL is not an absolute http(s) URL"),
            ),
        };
        Self {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            invalid,
        }
    }

    /// Sets `name` to `value`; a value that cannot be a header fails the request when sent.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                self.headers.insert(name, value);
            }
            Err(_) => self.invalid = Some("a header value is not valid"),
        }
        self
    }

    /// `Authorization: Bearer <token>`, marked sensitive (never logged).
    pub fn bearer_auth(mut self, token: &str) -> Self {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(http::header::AUTHORIZATION, value);
            }
            Err(_) => self.invalid = Some("the API key cannot be a header value"),
        }
        self
    }

    /// The body, sent with its length.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// An answer whose headers have arrived; its body is read as it comes.
#[derive(Debug)]
pub struct UpstreamResponse {
    head: http::response::Parts,
    body: Incoming,
}

impl UpstreamResponse {
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame?.into_data()
                && !data.is_empty()
            {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// The body as a stream of pieces.
    pub fn into_chunks(self) -> impl Stream<Item = Result<Bytes, hyper::Error>> + Send + 'static {
        self.body.into_data_stream()
    }
}

/// Opens connections: TCP, then TLS for https; through the environment's proxy where it applies
/// (a CONNECT tunnel for https, the request itself for http).
#[derive(Clone)]
struct Connector {
    tcp: HttpConnector,
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        Box::pin(self.clone().connect(dst))
    }
}

impl Connector {
    async fn connect(self, dst: Uri) -> Result<Conn, BoxError> {
        use tower_service::Service;
        let Some(proxy) = self.proxies.intercept(&dst) else {
            let io = self.tls_over(self.tcp.clone()).call(dst).await?;
            return Ok(Conn { io, proxied: false });
        };
        if proxy.uri().scheme() != Some(&Scheme::HTTP) {
            return Err("only http:// proxies are supported (set HTTPS_PROXY=http://…)".into());
        }
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(proxy.uri().clone(), self.tcp.clone());
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let io = self.tls_over(tunnel).call(dst).await?;
            return Ok(Conn { io, proxied: false });
        }
        let tcp = self.tcp.clone().call(proxy.uri().clone()).await?;
        Ok(Conn {
            io: MaybeHttpsStream::Http(tcp),
            proxied: true,
        })
    }

    fn tls_over<C>(&self, inner: C) -> HttpsConnector<C> {
        HttpsConnector::from((inner, self.tls.clone()))
    }
}

/// One connection, and whether it goes to a proxy (then requests name their whole URL).
struct Conn {
    io: MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
