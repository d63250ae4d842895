//! Stored responses (`storage.responses_retention_hours` > 0): `previous_response_id` continues a
//! stored conversation, whole or streamed; `store: false` keeps nothing; `GET` and `DELETE` on
//! `/v1/responses/{id}`. With storing off (the default) see `responses.rs`: refused, naming it.

use freerouter_tests::harness::{GatewayConfig, TestGateway};
use freerouter_tests::simulator::Simulator;
use serde_json::{Value, json};

const ANSWER: &str = "Nice to meet you, Ada.";

async fn storing_gateway() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("m").answer(ANSWER);
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "m", 1)
        .set("storage.responses_retention_hours", "24")
        .start()
        .await;
    (sim, gateway)
}

async fn post(gateway: &TestGateway, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/responses"))
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

fn roles_and_texts(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect()
}

#[tokio::test]
async fn a_stored_response_is_continued_by_previous_response_id() {
    let (sim, gateway) = storing_gateway().await;
    let first: Value = post(
        &gateway,
        &json!({"input": "My name is Ada.", "instructions": "old rules"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = first["id"].as_str().unwrap();
    assert_eq!(first["store"], true, "OpenAI's default once storing is on");

    let stored: Value = gateway
        .get(&format!("/v1/responses/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["id"], id);
    assert_eq!(stored["output"], first["output"]);

    let second = post(
        &gateway,
        &json!({"previous_response_id": id, "input": "What is my name?", "instructions": "new rules"}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["previous_response_id"], id);
    let sent = sim.requests("m");
    assert_eq!(
        roles_and_texts(&sent[1].body),
        pairs(&[
            ("system", "new rules"),
            ("user", "My name is Ada."),
            ("assistant", ANSWER),
            ("user", "What is my name?"),
        ]),
        "the stored turns between the new instructions and the new turn"
    );

    // A third turn continues the second, which holds the first.
    let third_id = second["id"].as_str().unwrap();
    post(
        &gateway,
        &json!({"previous_response_id": third_id, "input": "Bye."}),
    )
    .await;
    assert_eq!(roles_and_texts(&sim.requests("m")[2].body).len(), 5);
}

#[tokio::test]
async fn a_streamed_response_is_stored_before_it_ends() {
    let (sim, gateway) = storing_gateway().await;
    let text = post(
        &gateway,
        &json!({"input": "My name is Ada.", "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    let completed: Value = text
        .split("\n\n")
        .filter_map(|e| e.split_once("data: ").map(|(_, d)| d))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["type"] == "response.completed")
        .expect("a completed event");
    let id = completed["response"]["id"].as_str().unwrap();
    // Sent the moment the stream ended: the response is already there.
    let next = post(
        &gateway,
        &json!({"previous_response_id": id, "input": "And?"}),
    )
    .await;
    assert_eq!(next.status(), 200);
    assert_eq!(
        roles_and_texts(&sim.requests("m")[1].body),
        pairs(&[
            ("user", "My name is Ada."),
            ("assistant", ANSWER),
            ("user", "And?"),
        ])
    );
}

#[tokio::test]
async fn store_false_keeps_nothing_and_a_deleted_response_is_gone() {
    let (_sim, gateway) = storing_gateway().await;
    let unstored: Value = post(&gateway, &json!({"input": "secret", "store": false}))
        .await
        .json()
        .await
        .unwrap();
    let id = unstored["id"].as_str().unwrap();
    assert_eq!(unstored["store"], false);
    let missing = gateway.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(missing.status(), 404);
    let follow = post(&gateway, &json!({"previous_response_id": id, "input": "x"})).await;
    assert_eq!(follow.status(), 400);
    let body: Value = follow.json().await.unwrap();
    assert_eq!(body["error"]["param"], "previous_response_id");

    let kept: Value = post(&gateway, &json!({"input": "keep me"}))
        .await
        .json()
        .await
        .unwrap();
    let id = kept["id"].as_str().unwrap();
    let url = gateway.url(&format!("/v1/responses/{id}"));
    let deleted: Value = gateway
        .http
        .delete(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    assert_eq!(
        gateway.get(&format!("/v1/responses/{id}")).await.status(),
        404
    );
    assert_eq!(
        gateway.http.delete(&url).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn with_storing_off_a_stored_response_is_not_found_naming_the_setting() {
    let sim = Simulator::start().await;
    sim.model("m").answer(ANSWER);
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "m", 1)
        .start()
        .await;
    let response = gateway.get("/v1/responses/resp_123").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "response_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage.responses_retention_hours")
    );
}
