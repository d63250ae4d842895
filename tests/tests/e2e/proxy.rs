//! The proxy the environment names (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, as curl reads them):
//! upstream calls go through it, whole for http and tunnelled with CONNECT for https.

use freerouter_tests::harness::{GatewayConfig, ask};
use freerouter_tests::simulator::Simulator;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

/// A forward proxy on 127.0.0.1:0 keeping the head of every request it was sent. A plain request
/// (absolute URL) is passed to its host; a CONNECT is refused with 502 (no TLS upstream here).
struct ForwardProxy {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl ForwardProxy {
    async fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = heads.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, kept.clone()));
            }
        });
        ForwardProxy { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(mut client: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    heads.lock().unwrap().push(text.clone());
    let target = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if text.starts_with("CONNECT ") {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let authority = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        return;
    };
    if upstream.write_all(&head).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

fn gateway_for(sim: &Simulator) -> GatewayConfig {
    sim.model("m");
    GatewayConfig::new().provider("p", sim).route("p", "m", 1)
}

/// Starts `config` as a gateway process and sends it one chat request: the answer's status.
async fn one_chat(config: GatewayConfig) -> u16 {
    freerouter_tests::harness::init_tls();
    let dir = tempfile::tempdir().unwrap();
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "hello"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_http_provider_is_reached_through_the_http_proxy_the_environment_names() {
    let sim = Simulator::start().await;
    let proxy = ForwardProxy::start().await;
    let status = one_chat(gateway_for(&sim).env_var("HTTP_PROXY", &proxy.url)).await;
    assert_eq!(status, 200);
    assert_eq!(sim.calls("m"), 1);
    let expected = format!("POST {}/chat/completions HTTP/1.1", sim.base_url());
    assert!(
        proxy.heads().iter().any(|head| head.starts_with(&expected)),
        "the proxy was sent the request with its whole URL ({expected}); it saw {:?}",
        proxy.heads()
    );
}

#[tokio::test]
async fn no_proxy_sends_the_hosts_it_lists_past_the_proxy() {
    let sim = Simulator::start().await;
    let proxy = ForwardProxy::start().await;
    let config = gateway_for(&sim)
        .env_var("HTTP_PROXY", &proxy.url)
        .env_var("NO_PROXY", "127.0.0.1");
    assert_eq!(one_chat(config).await, 200);
    assert_eq!(sim.calls("m"), 1);
    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());
}

#[tokio::test]
async fn an_https_provider_is_tunnelled_through_the_proxy_with_the_proxys_credentials() {
    let proxy = ForwardProxy::start().await;
    let with_credentials = proxy.url.replace("http://", "http://alice:s3cret@");
    let config = GatewayConfig::new()
        .provider_at("p", "https://provider.invalid:8443/v1", "sk-test")
        .route("p", "m", 1)
        .env_var("HTTPS_PROXY", &with_credentials);
    // The proxy refuses the tunnel, so the route fails; what matters is what it was asked.
    assert_ne!(one_chat(config).await, 200);
    let heads = proxy.heads();
    let connect = heads
        .iter()
        .find(|head| head.starts_with("CONNECT provider.invalid:8443 HTTP/1.1"))
        .unwrap_or_else(|| panic!("a CONNECT to the provider; the proxy saw {heads:?}"));
    // base64("alice:s3cret")
    assert!(
        connect
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic ywxpy2u6cznjcmv0"),
        "{connect}"
    );
    assert!(
        !connect.to_ascii_lowercase().contains("sk-test"),
        "the provider's key never reaches the proxy in the clear: {connect}"
    );
}
