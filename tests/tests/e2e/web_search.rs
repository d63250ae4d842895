//! `POST /v1/chat/completions/web-search`: only `web-search` routes, the search asked for in each
//! provider's own form (OpenAI's forced tool, Groq Compound's `compound_custom`, OpenRouter's plugin).

use freerouter_tests::harness::{
    GatewayConfig, TestGateway, ask, ask_stream, header, sse_data, streamed_text,
};
use freerouter_tests::simulator::{Behavior, RecordedRequest, Simulator};
use serde_json::{Value, json};

const WEB_SEARCH_TAGS: &str = "context_window = 100000\ntags = [\"web-search\"]";

/// `POST /v1/chat/completions/web-search` with a JSON body.
async fn search(gateway: &TestGateway, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/chat/completions/web-search"))
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

/// The tools of a recorded body (empty when absent).
fn tools(body: &Value) -> Vec<Value> {
    body["tools"].as_array().cloned().unwrap_or_default()
}

fn is_preview_tool(tool: &Value) -> bool {
    tool["type"] == "web_search_preview"
}

fn header_of<'a>(request: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn function_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Looks something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}
        }
    })
}

/// A plain route (rank 1, no tags) and Groq's compound model tagged `web-search` (rank 2), the built-in
/// `groq` provider pointed at the simulator.
async fn groq_compound_behind_a_plain_route() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("plain").answer("plain answer");
    sim.model("groq/compound").answer("searched answer");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.groq]\nbase_url = \"{}\"\napi_keys = [\"gsk-test\"]",
            sim.url("/openai/v1")
        ))
        .provider("lab", &sim)
        .route("lab", "plain", 1)
        .route_with("groq", "groq/compound", 2, WEB_SEARCH_TAGS)
        .start()
        .await;
    (sim, gateway)
}

#[tokio::test]
async fn a_groq_compound_route_gets_compound_custom_and_no_preview_tool() {
    let (sim, gateway) = groq_compound_behind_a_plain_route().await;
    let response = search(&gateway, &ask("auto", "What happened in the news today?")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "groq/groq/compound");
    assert_eq!(header(&response, "x-gateway-provider"), "groq");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "searched answer");
    assert_eq!(
        sim.calls("plain"),
        0,
        "rank 1 has no web search: never called"
    );
    let sent = &sim.requests("groq/compound")[0];
    assert_eq!(sent.path, "/openai/v1/chat/completions");
    assert_eq!(header_of(sent, "authorization"), Some("Bearer gsk-test"));
    let enabled = sent.body["compound_custom"]["tools"]["enabled_tools"]
        .as_array()
        .unwrap_or_else(|| panic!("compound_custom.tools.enabled_tools: {}", sent.body));
    assert!(enabled.iter().any(|t| t == "web_search"), "{}", sent.body);
    assert!(
        !tools(&sent.body).iter().any(is_preview_tool),
        "no web_search_preview tool for Groq: {}",
        sent.body
    );
    assert!(
        sent.body
            .get("tool_choice")
            .is_none_or(|c| !c.to_string().contains("web_search")),
        "no tool_choice naming the search: {}",
        sent.body
    );
}

#[tokio::test]
async fn a_caller_supplied_preview_tool_is_translated_for_groq() {
    let (sim, gateway) = groq_compound_behind_a_plain_route().await;
    let mut body = ask("auto", "What happened in the news today?");
    body["tools"] = json!([{"type": "web_search_preview"}]);
    body["tool_choice"] = json!({"type": "web_search_preview"});
    let response = search(&gateway, &body).await;
    // A caller's own web-search tool does not ask for general tool calling.
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(header(&response, "x-gateway-route"), "groq/groq/compound");
    let sent = &sim.requests("groq/compound")[0].body;
    assert!(!tools(sent).iter().any(is_preview_tool), "{sent}");
    assert!(sent.get("tool_choice").is_none(), "{sent}");
    let enabled = sent["compound_custom"]["tools"]["enabled_tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        enabled.iter().filter(|t| *t == "web_search").count(),
        1,
        "{sent}"
    );
}

#[tokio::test]
async fn only_web_search_routes_are_tried_even_when_they_fail() {
    let (sim, gateway) = groq_compound_behind_a_plain_route().await;
    sim.model("groq/compound")
        .always(Behavior::error(503, "overloaded", "busy"));
    let response = search(&gateway, &ask("auto", "news?")).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "all_routes_failed", "{body}");
    assert_eq!(
        sim.calls("plain"),
        0,
        "no fallback to a route without search"
    );
    assert!(sim.calls("groq/compound") >= 1);
}

/// A provider of the user's own (OpenAI-compatible) with one route tagged as `tags`.
async fn openai_style_route(tags: &str) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("searcher").answer("searched answer");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with(
            "lab",
            "searcher",
            1,
            &format!("context_window = 100000\ntags = {tags}"),
        )
        .start()
        .await;
    (sim, gateway)
}

#[tokio::test]
async fn an_openai_style_route_gets_the_tool_and_a_forced_tool_choice() {
    let (sim, gateway) = openai_style_route("[\"web-search\"]").await;
    let response = search(&gateway, &ask("auto", "Who won yesterday?")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/searcher");
    let sent = &sim.requests("searcher")[0].body;
    assert_eq!(tools(sent), vec![json!({"type": "web_search_preview"})]);
    assert_eq!(sent["tool_choice"], json!({"type": "web_search_preview"}));
    assert_eq!(sent["messages"][0]["content"], "Who won yesterday?");
}

#[tokio::test]
async fn a_caller_supplied_web_search_tool_is_not_duplicated() {
    let (sim, gateway) = openai_style_route("[\"web-search\", \"tools\"]").await;
    let mut body = ask("auto", "Look it up.");
    body["tools"] = json!([{"type": "web_search_preview"}, function_tool()]);
    let response = search(&gateway, &body).await;
    assert_eq!(response.status(), 200);
    let sent = &sim.requests("searcher")[0].body;
    let sent_tools = tools(sent);
    assert_eq!(
        sent_tools.iter().filter(|t| is_preview_tool(t)).count(),
        1,
        "one web_search_preview: {sent}"
    );
    assert!(
        sent_tools.contains(&function_tool()),
        "the function tool is kept: {sent}"
    );
    assert_eq!(sent_tools.len(), 2, "{sent}");
    assert_eq!(sent["tool_choice"], json!({"type": "web_search_preview"}));
}

#[tokio::test]
async fn a_streamed_web_search_is_served_with_the_tool() {
    let (sim, gateway) = openai_style_route("[\"web-search\"]").await;
    let response = search(&gateway, &ask_stream("auto", "Who won yesterday?")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/searcher");
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), "searched answer");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let sent = &sim.requests("searcher")[0].body;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["tool_choice"], json!({"type": "web_search_preview"}));
}

#[tokio::test]
async fn openrouter_gets_its_web_plugin_and_identification_headers() {
    let sim = Simulator::start().await;
    let model = "meta-llama/llama-3.3-70b-instruct:free";
    sim.model(model).answer("searched answer");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.openrouter]\nbase_url = \"{}\"\napi_keys = [\"sk-or-test\"]",
            sim.url("/api/v1")
        ))
        .route_with("openrouter", model, 1, WEB_SEARCH_TAGS)
        .start()
        .await;
    let response = search(&gateway, &ask("auto", "What is new in Rust?")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-route"),
        format!("openrouter/{model}")
    );
    let sent = &sim.requests(model)[0];
    assert_eq!(sent.path, "/api/v1/chat/completions");
    assert_eq!(header_of(sent, "authorization"), Some("Bearer sk-or-test"));
    let plugins = sent.body["plugins"].as_array().cloned().unwrap_or_default();
    assert!(
        plugins.iter().any(|p| p["id"] == "web"),
        "plugins holds {{\"id\":\"web\"}}: {}",
        sent.body
    );
    assert!(
        !tools(&sent.body).iter().any(is_preview_tool),
        "{}",
        sent.body
    );
    assert!(header_of(sent, "http-referer").is_some_and(|v| !v.is_empty()));
    assert!(header_of(sent, "x-title").is_some_and(|v| !v.is_empty()));
}

#[tokio::test]
async fn no_web_search_route_is_unsupported_capability() {
    let sim = Simulator::start().await;
    sim.model("plain");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with(
            "lab",
            "plain",
            1,
            "tags = [\"tools\", \"vision\", \"json\"]",
        )
        .start()
        .await;
    let response = search(&gateway, &ask("auto", "news?")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "unsupported_capability", "{body}");
    assert_eq!(error["type"], "invalid_request_error", "{body}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("web-search")),
        "{body}"
    );
    assert!(error.get("param").is_some(), "{body}");
    assert_eq!(sim.total_calls(), 0, "no upstream was called");
}

#[tokio::test]
async fn the_normal_endpoint_never_adds_a_web_tool() {
    let (sim, gateway) = openai_style_route("[\"web-search\"]").await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/searcher");
    let sent = &sim.requests("searcher")[0].body;
    assert!(sent.get("tools").is_none(), "{sent}");
    assert!(sent.get("tool_choice").is_none(), "{sent}");
    assert!(sent.get("plugins").is_none(), "{sent}");
}

#[tokio::test]
async fn the_normal_endpoint_sends_groq_compound_no_compound_custom() {
    let (sim, gateway) = groq_compound_behind_a_plain_route().await;
    let response = gateway.chat(&ask("groq/groq/compound", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "groq/groq/compound");
    let sent = &sim.requests("groq/compound")[0].body;
    assert!(sent.get("compound_custom").is_none(), "{sent}");
    assert!(sent.get("tools").is_none(), "{sent}");
}
