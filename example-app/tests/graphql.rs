//! The chat's GraphQL schema in process: queries and mutations at `/api/graphql`, the write
//! budget mutations spend, and introspection off in production. (Subscriptions, the Absinthe
//! channel and two nodes are driven with the real clients in tests/js/graphql.test.js.)

mod in_process;

use example_app::keys::AppEnv;
use fawkes::test::ConnTest;
use serde_json::{json, Value};

use in_process::test_db;

async fn post(client: &ConnTest, query: &str, variables: Value) -> Value {
    let resp = client
        .post("/api/graphql")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await;
    resp.assert_status(200);
    resp.json()
}

const CREATE: &str = "mutation($room: ID!, $body: String!) { createMessage(roomId: $room, author: \"Ada\", body: $body) { id roomId author body } }";

#[tokio::test]
async fn rooms_messages_and_the_mutation_over_http() {
    let db = test_db().await;
    let app = example_app::app(&db.url, fawkes::security::SecretKeyBase::generate()).await.unwrap();
    let client = ConnTest::new(app.router);
    let room = client.post("/api/rooms").json(&json!({"room": {"name": "graphs"}})).send().await;
    let room_id = room.json()["data"]["id"].as_i64().unwrap().to_string();

    let created = post(&client, CREATE, json!({"room": room_id, "body": "hello"})).await;
    let message = &created["data"]["createMessage"];
    assert_eq!(message["roomId"], room_id.as_str(), "{created}");
    assert_eq!(
        (message["author"].as_str(), message["body"].as_str()),
        (Some("Ada"), Some("hello"))
    );

    let query = "query($id: ID!) { room(id: $id) { name messages(last: 5) { body author } } }";
    let room = post(&client, query, json!({"id": room_id})).await;
    assert_eq!(
        room,
        json!({"data": {"room": {"name": "graphs", "messages": [{"body": "hello", "author": "Ada"}]}}})
    );
    let rooms = post(&client, "{ rooms(first: 1) { name } }", json!({})).await;
    assert_eq!(rooms, json!({"data": {"rooms": [{"name": "graphs"}]}}));
    assert_eq!(
        post(&client, "{ room(id: \"nope\") { name } }", json!({})).await,
        json!({"data": {"room": null}})
    );

    // What the context refuses: the error at the field's path, the fields in its extensions.
    let invalid = post(&client, CREATE, json!({"room": room_id, "body": " "})).await;
    assert_eq!(invalid["errors"][0]["path"], json!(["createMessage"]), "{invalid}");
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "UNPROCESSABLE");
    assert!(invalid["errors"][0]["extensions"]["fields"]["body"].is_array(), "{invalid}");
    let missing = post(&client, CREATE, json!({"room": "999999", "body": "x"})).await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND", "{missing}");

    // A list costs its length: asking for the most of everything is refused.
    let costly = "{ rooms(first: 100) { messages(last: 100) { id author body insertedAt } } }";
    let refused = post(&client, costly, json!({})).await;
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("complex"), "{refused}");
    let deep = "{ rooms { messages { id } } }";
    assert!(post(&client, deep, json!({})).await["data"]["rooms"].is_array());
}

#[tokio::test]
async fn mutations_spend_the_clients_write_budget() {
    let db = test_db().await;
    let app = example_app::app(&db.url, fawkes::security::SecretKeyBase::generate()).await.unwrap();
    let repo = app.state.repo.clone();
    let room = example_app::chat::create_room(
        &repo,
        example_app::chat::RoomAttrs { name: Some("budget".into()) },
    )
    .await
    .unwrap();
    let writer = example_app::graphql::Writer {
        limit: app.state.writes.clone(),
        client: Some("127.0.0.9".parse().unwrap()),
    };
    // As the pipeline's plug (or the socket's connect) hands it to resolvers: in the assigns.
    let mut assigns = fawkes::Assigns::new();
    assigns.insert(writer);
    let schema = example_app::graphql::schema(repo, AppEnv::Test);
    let mut refused = None;
    let start = std::time::Instant::now();
    for n in 0..=3 * example_app::router::API_WRITES {
        let request = async_graphql::Request::new(CREATE)
            .variables(async_graphql::Variables::from_json(
                json!({"room": room.id.to_string(), "body": format!("n{n}")}),
            ))
            .data(assigns.clone())
            .data(fawkes::PubSub::new("test"));
        let response = schema.execute(request).await;
        if response.is_err() {
            refused = Some((n, response));
            break;
        }
    }
    let (n, response) = refused.expect("the budget runs out");
    // Every write of the budget went through first; a slow machine earns one more for each
    // 1/API_WRITES of the period the loop took (the budget refills as it goes).
    let writes = example_app::router::API_WRITES;
    let refilled = start.elapsed().as_secs_f64() * f64::from(writes)
        / example_app::router::API_WRITES_PERIOD.as_secs_f64();
    assert!(n >= writes, "refused after {n} writes");
    assert!(f64::from(n) <= f64::from(writes) + refilled.ceil() + 1.0, "{n} writes in {refilled}");
    let error = serde_json::to_value(&response.errors[0]).unwrap();
    assert_eq!(error["extensions"]["code"], "TOO_MANY_REQUESTS", "{error}");
    assert!(error["extensions"]["retryAfter"].as_u64() >= Some(1), "{error}");
}

#[tokio::test]
async fn introspection_is_off_in_production() {
    let db = test_db().await;
    let app = example_app::app(&db.url, fawkes::security::SecretKeyBase::generate()).await.unwrap();
    let introspect = "{ __schema { queryType { name } } }";
    let dev = example_app::graphql::schema(app.state.repo.clone(), AppEnv::Dev);
    let response = dev.execute(introspect).await;
    assert_eq!(
        response.data.into_json().unwrap(),
        json!({"__schema": {"queryType": {"name": "Query"}}})
    );
    // As deep as GraphiQL's own introspection query reaches (seven levels of `ofType`, under
    // a field's argument): GraphiQL loads the schema in development.
    let of_type =
        (0..7).fold("kind name".to_owned(), |inner, _| format!("kind ofType {{ {inner} }}"));
    let graphiql = format!(
        "{{ __schema {{ types {{ name fields {{ name args {{ type {{ {of_type} }} }} }} }} }} }}"
    );
    let response = dev.execute(graphiql.as_str()).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let prod = example_app::graphql::schema(app.state.repo.clone(), AppEnv::Prod);
    let response = prod.execute(introspect).await;
    assert!(response.is_err() || response.data.into_json().unwrap()["__schema"].is_null());
}
