//! The JSON API in process: every route, status and body shape, through the real router and a
//! fresh database per test (see `in_process` for SQLite or Postgres).

mod in_process;

use example_app::chat::{self, MessageAttrs};
use example_app::{AppRouter, Repo};
use fawkes::test::{ConnTest, TestResponse};
use serde_json::json;

use in_process::{assert_timestamp, test_db, TestDb};

/// The app on a fresh database: its client, its repo, and the database kept alive.
async fn app() -> (ConnTest, Repo, TestDb) {
    let db = test_db().await;
    let key_base = fawkes::security::SecretKeyBase::generate();
    let app = example_app::app(&db.url, key_base).await.expect("app starts");
    (ConnTest::new(app.router), app.state.repo, db)
}

async fn create_room(client: &ConnTest, name: &str) -> i64 {
    let resp = client.post("/api/rooms").json(&json!({ "room": { "name": name } })).send().await;
    resp.assert_status(201);
    resp.json()["data"]["id"].as_i64().expect("room id is an integer")
}

#[track_caller]
fn assert_not_found(resp: &TestResponse) {
    resp.assert_status(404).assert_json(&json!({"errors":{"detail":"Not Found"}}));
}

#[tokio::test]
async fn rooms_crud_cycle() {
    let (client, _repo, _db) = app().await;

    client.get("/api/rooms").send().await.assert_status(200).assert_json(&json!({"data": []}));

    let resp = client.post("/api/rooms").json(&json!({"room": {"name": "lobby"}})).send().await;
    resp.assert_status(201).assert_header("content-type", "application/json");
    let body = resp.json();
    let id = body["data"]["id"].as_i64().expect("integer id");
    let inserted_at = assert_timestamp(&body["data"]["inserted_at"]);
    assert_eq!(body, json!({"data": {"id": id, "name": "lobby", "inserted_at": inserted_at}}));
    resp.assert_header("location", &AppRouter::room_show_path(id));
    assert_eq!(resp.header("location"), Some(format!("/api/rooms/{id}").as_str()));

    let other = create_room(&client, "random").await;
    assert!(other > id, "ids grow");

    let resp = client.get("/api/rooms").send().await;
    resp.assert_status(200);
    let list = resp.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["data"][0], json!({"id": id, "name": "lobby", "inserted_at": inserted_at}));
    assert_eq!(list["data"][1]["name"], "random");

    let show = client.get(&AppRouter::room_show_path(id)).send().await;
    show.assert_status(200)
        .assert_json(&json!({"data": {"id": id, "name": "lobby", "inserted_at": inserted_at}}));

    let resp = client
        .patch(&format!("/api/rooms/{id}"))
        .json(&json!({"room": {"name": "hall"}}))
        .send()
        .await;
    resp.assert_status(200)
        .assert_json(&json!({"data": {"id": id, "name": "hall", "inserted_at": inserted_at}}));
    let resp = client
        .put(&format!("/api/rooms/{id}"))
        .json(&json!({"room": {"name": "atrium"}}))
        .send()
        .await;
    resp.assert_status(200);
    assert_eq!(resp.json()["data"]["name"], "atrium");
    // An update that sets nothing changes nothing.
    let resp = client.patch(&format!("/api/rooms/{id}")).json(&json!({"room": {}})).send().await;
    resp.assert_status(200);
    assert_eq!(resp.json()["data"]["name"], "atrium");
    let show = client.get(&format!("/api/rooms/{id}")).send().await;
    assert_eq!(show.json()["data"]["name"], "atrium");

    let resp = client.delete(&format!("/api/rooms/{id}")).send().await;
    resp.assert_status(204);
    assert!(resp.bytes().is_empty(), "204 has no body: {}", resp.text());

    assert_not_found(&client.get(&format!("/api/rooms/{id}")).send().await);
    assert_not_found(&client.delete(&format!("/api/rooms/{id}")).send().await);
    let resp = client
        .patch(&format!("/api/rooms/{id}"))
        .json(&json!({"room": {"name": "x"}}))
        .send()
        .await;
    assert_not_found(&resp);
    let resp =
        client.put(&format!("/api/rooms/{id}")).json(&json!({"room": {"name": "x"}})).send().await;
    assert_not_found(&resp);

    let resp = client.get("/api/rooms").send().await;
    assert_eq!(resp.json()["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(resp.json()["data"][0]["id"], other);
}

#[tokio::test]
async fn blank_or_missing_names_are_422() {
    let (client, _repo, _db) = app().await;
    let blank = json!({"errors": {"name": ["can't be blank"]}});
    for body in
        [json!({"room": {"name": ""}}), json!({"room": {"name": "  \t"}}), json!({"room": {}})]
    {
        let resp = client.post("/api/rooms").json(&body).send().await;
        resp.assert_status(422).assert_json(&blank);
    }
    client.get("/api/rooms").send().await.assert_json(&json!({"data": []}));

    let id = create_room(&client, "lobby").await;
    for method in ["PATCH", "PUT"] {
        let resp = client
            .request(method.parse().unwrap(), &format!("/api/rooms/{id}"))
            .json(&json!({"room": {"name": " "}}))
            .send()
            .await;
        resp.assert_status(422).assert_json(&blank);
    }
    let show = client.get(&format!("/api/rooms/{id}")).send().await;
    assert_eq!(show.json()["data"]["name"], "lobby", "a rejected update writes nothing");

    // Params without the `room` object are not a request this action reads: a 400, as
    // Phoenix answers an action clause that does not match.
    let resp = client.post("/api/rooms").json(&json!({"name": "lobby"})).send().await;
    resp.assert_status(400);
    assert!(resp.json()["errors"]["room"][0].as_str().unwrap().contains("expected an object"));
    // A value of the wrong type is named like a rule's error: `name`, not `room.name`.
    let resp = client.post("/api/rooms").json(&json!({"room": {"name": 5}})).send().await;
    resp.assert_status(422).assert_json(&json!({"errors": {"name": ["is invalid"]}}));
    // Names and messages have a length limit, so no request stores or reads back megabytes.
    let long = "x".repeat(101);
    let resp = client.post("/api/rooms").json(&json!({"room": {"name": long}})).send().await;
    resp.assert_status(422)
        .assert_json(&json!({"errors": {"name": ["should be at most 100 character(s)"]}}));
    let control = json!({"room": {"name": "a\u{0}\u{1b}[2J\u{7}"}});
    let resp = client.post("/api/rooms").json(&control).send().await;
    resp.assert_status(422)
        .assert_json(&json!({"errors": {"name": ["contains characters that cannot be shown"]}}));
    let resp = client
        .post(&format!("/api/rooms/{id}/messages"))
        .json(&json!({"message": {"author": "a".repeat(41), "body": "b".repeat(2001)}}))
        .send()
        .await;
    resp.assert_status(422).assert_json(&json!({"errors": {
        "author": ["should be at most 40 character(s)"],
        "body": ["should be at most 2000 character(s)"],
    }}));
}

#[tokio::test]
async fn rooms_are_listed_a_page_at_a_time() {
    let (client, repo, _db) = app().await;
    let mut ids = Vec::new();
    for n in 0..example_app::chat::ROOM_PAGE + 3 {
        let room = example_app::chat::create_room(
            &repo,
            example_app::chat::RoomAttrs { name: Some(format!("room {n}")) },
        )
        .await
        .unwrap();
        ids.push(room.id);
    }
    let page = client.get("/api/rooms").send().await.json();
    let page = page["data"].as_array().unwrap().clone();
    assert_eq!(page.len() as i64, example_app::chat::ROOM_PAGE);
    let last = page.last().unwrap()["id"].as_i64().unwrap();
    let next = client.get(&format!("/api/rooms?after={last}")).send().await.json();
    let next: Vec<i64> =
        next["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(next, ids[ids.len() - 3..]);
    client
        .get("/api/rooms?after=first")
        .send()
        .await
        .assert_status(422)
        .assert_json(&json!({"errors": {"after": ["is invalid"]}}));
}

#[tokio::test]
async fn ids_that_are_not_integers_are_404() {
    let (client, _repo, _db) = app().await;
    create_room(&client, "lobby").await;
    for id in ["abc", "1.5", "-", "99999999999999999999999", "1%20"] {
        assert_not_found(&client.get(&format!("/api/rooms/{id}")).send().await);
        assert_not_found(&client.delete(&format!("/api/rooms/{id}")).send().await);
        let update = json!({"room": {"name": "x"}});
        assert_not_found(&client.patch(&format!("/api/rooms/{id}")).json(&update).send().await);
        assert_not_found(&client.get(&format!("/api/rooms/{id}/messages")).send().await);
        let message = json!({"message": {"author": "ada", "body": "hi"}});
        let resp = client.post(&format!("/api/rooms/{id}/messages")).json(&message).send().await;
        assert_not_found(&resp);
    }
}

#[tokio::test]
async fn messages_are_nested_under_their_room() {
    let (client, _repo, _db) = app().await;
    let room = create_room(&client, "lobby").await;
    let other = create_room(&client, "other").await;
    let path = AppRouter::room_message_index_path(room);
    assert_eq!(path, format!("/api/rooms/{room}/messages"));

    client.get(&path).send().await.assert_status(200).assert_json(&json!({"data": []}));

    let resp = client
        .post(&path)
        .json(&json!({"message": {"author": "ada", "body": "hello"}}))
        .send()
        .await;
    resp.assert_status(201).assert_header("content-type", "application/json");
    let first = resp.json();
    let first_id = first["data"]["id"].as_i64().expect("integer id");
    let inserted_at = assert_timestamp(&first["data"]["inserted_at"]);
    assert_eq!(
        first,
        json!({"data": {
            "id": first_id, "room_id": room, "author": "ada", "body": "hello", "inserted_at": inserted_at
        }})
    );
    let resp = client
        .post(&path)
        .json(&json!({"message": {"author": "bob", "body": "hi ada"}}))
        .send()
        .await;
    resp.assert_status(201);
    let other_path = AppRouter::room_message_index_path(other);
    let resp = client
        .post(&other_path)
        .json(&json!({"message": {"author": "eve", "body": "elsewhere"}}))
        .send()
        .await;
    resp.assert_status(201);
    assert_eq!(resp.json()["data"]["room_id"], other);

    let list = client.get(&path).send().await;
    list.assert_status(200);
    let list = list.json();
    let bodies: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hello", "hi ada"], "oldest first, only this room's");
    assert_eq!(list["data"][0], first["data"]);
    assert_eq!(list["data"][1]["author"], "bob");
    assert_eq!(list["data"][1]["room_id"], room);
}

#[tokio::test]
async fn message_validation_lists_each_blank_field() {
    let (client, _repo, _db) = app().await;
    let room = create_room(&client, "lobby").await;
    let path = AppRouter::room_message_index_path(room);
    let cases = [
        (json!({"message": {}}), json!({"author": ["can't be blank"], "body": ["can't be blank"]})),
        (
            json!({"message": {"author": " ", "body": ""}}),
            json!({"author": ["can't be blank"], "body": ["can't be blank"]}),
        ),
        (json!({"message": {"author": "ada"}}), json!({"body": ["can't be blank"]})),
        (json!({"message": {"author": "", "body": "hi"}}), json!({"author": ["can't be blank"]})),
        // Control characters: nothing a person types, six bytes each in every answer.
        (
            json!({"message": {"author": "ada\u{7}", "body": "a\u{1}b"}}),
            json!({
                "author": ["contains characters that cannot be shown"],
                "body": ["contains characters that cannot be shown"],
            }),
        ),
    ];
    for (body, errors) in cases {
        let resp = client.post(&path).json(&body).send().await;
        resp.assert_status(422).assert_json(&json!({ "errors": errors }));
    }
    client.get(&path).send().await.assert_json(&json!({"data": []}));
    // Line breaks and tabs are text.
    let text = json!({"message": {"author": "ada", "body": "two\nlines\tand a tab"}});
    client.post(&path).json(&text).send().await.assert_status(201);
}

#[tokio::test]
async fn messages_of_a_missing_room_are_404() {
    let (client, _repo, _db) = app().await;
    let room = create_room(&client, "lobby").await;
    let missing = room + 1000;
    assert_not_found(&client.get(&AppRouter::room_message_index_path(missing)).send().await);
    let message = json!({"message": {"author": "ada", "body": "hi"}});
    let resp =
        client.post(&AppRouter::room_message_index_path(missing)).json(&message).send().await;
    assert_not_found(&resp);
    // A missing room is reported before the body is judged.
    let resp =
        client.post(&AppRouter::room_message_index_path(missing)).json(&json!({})).send().await;
    assert_not_found(&resp);
}

#[tokio::test]
async fn history_is_the_last_hundred_oldest_first() {
    let (client, repo, _db) = app().await;
    let room = create_room(&client, "busy").await;
    let total = chat::MESSAGE_HISTORY + 5;
    for n in 1..=total {
        let attrs =
            MessageAttrs { author: Some("ada".to_owned()), body: Some(format!("message {n}")) };
        chat::create_message(&repo, room, attrs).await.unwrap();
    }
    let resp = client.get(&AppRouter::room_message_index_path(room)).send().await;
    resp.assert_status(200);
    let data = resp.json()["data"].as_array().unwrap().clone();
    let bodies: Vec<String> = data.iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (6..=total).map(|n| format!("message {n}")).collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn deleting_a_room_deletes_its_messages() {
    let (client, repo, _db) = app().await;
    let room = create_room(&client, "doomed").await;
    let message = json!({"message": {"author": "ada", "body": "bye"}});
    let path = AppRouter::room_message_index_path(room);
    client.post(&path).json(&message).send().await.assert_status(201);
    assert_eq!(chat::count_messages(&repo, room).await.unwrap(), 1);
    client.delete(&AppRouter::room_show_path(room)).send().await.assert_status(204);
    assert_eq!(chat::count_messages(&repo, room).await.unwrap(), 0);
    assert_not_found(&client.get(&path).send().await);
}

#[tokio::test]
async fn the_router_answers_malformed_oversized_unknown_and_unroutable_requests() {
    let (client, _repo, _db) = app().await;
    let room = create_room(&client, "lobby").await;

    let resp = client
        .post("/api/rooms")
        .header("content-type", "application/json")
        .body("{\"room\": {\"name\": ")
        .send()
        .await;
    resp.assert_status(400);
    assert!(resp.json()["errors"]["detail"].as_str().unwrap().contains("malformed JSON"));

    let limit = fawkes::router::DEFAULT_MAX_BODY;
    let mut huge = br#"{"room":{"name":""#.to_vec();
    huge.resize(limit + 1, b'a');
    let resp = client
        .post("/api/rooms")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    resp.assert_status(413);
    assert!(resp.json()["errors"]["detail"].is_string());
    let rooms = client.get("/api/rooms").send().await.json();
    assert_eq!(rooms["data"].as_array().map(Vec::len), Some(1), "nothing was created: {rooms}");

    assert_not_found(&client.get("/api/nope").send().await);
    assert_not_found(&client.get("/api/rooms/1/edit").send().await);
    assert_not_found(&client.get("/api/rooms/new/messages/1").send().await);

    let resp = client.post(&AppRouter::room_show_path(room)).send().await;
    resp.assert_status(405).assert_json(&json!({"errors": {"detail": "Method Not Allowed"}}));
    let allow = resp.header("allow").unwrap();
    for method in ["GET", "PATCH", "PUT", "DELETE"] {
        assert!(allow.contains(method), "allow: {allow}");
    }
    let resp = client.delete(&AppRouter::room_message_index_path(room)).send().await;
    resp.assert_status(405);
    let allow = resp.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "allow: {allow}");

    let resp = client.get("/api/rooms").header("accept", "text/html").send().await;
    resp.assert_status(406);
    client.get("/api/rooms").header("accept", "application/json").send().await.assert_status(200);
}

#[tokio::test]
async fn landing_page_and_health_checks() {
    let (client, _repo, _db) = app().await;
    let resp = client.get("/").send().await;
    resp.assert_status(200).assert_header("content-type", "text/html; charset=utf-8");
    let html = resp.text();
    for needle in ["<title>Fawkes</title>", "href=\"/api/rooms\"", "href=\"/healthz\""] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    client.get("/healthz").send().await.assert_status(200).assert_json(&json!({"status": "ok"}));
    let ready = json!({"status": "ok", "pubsub": {"adapter": "local", "connected": true}});
    client.get("/readyz").send().await.assert_status(200).assert_json(&ready);
    assert_eq!(AppRouter::healthz_path(), "/healthz");
}

#[tokio::test]
async fn each_router_uses_the_repo_it_was_built_with() {
    let (first, _repo, _db) = app().await;
    let (second, _repo2, _db2) = app().await;
    create_room(&first, "only here").await;
    first.get("/api/rooms").send().await.assert_status(200);
    assert_eq!(first.get("/api/rooms").send().await.json()["data"].as_array().unwrap().len(), 1);
    second.get("/api/rooms").send().await.assert_json(&json!({"data": []}));
}

/// `path` with its params filled in: `:id` as `1`, a catch-all as `x`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.chars().next() {
            Some(':') => "1",
            Some('*') => "x",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The table `fawkes routes` prints is the router's own: every route in it is where its
/// requests go, and is served (no `404` for a path without params, no `405` ever).
#[tokio::test]
async fn the_route_table_is_what_the_router_serves() {
    let db = test_db().await;
    let key_base = fawkes::security::SecretKeyBase::generate();
    let app = example_app::app(&db.url, key_base.clone()).await.expect("app starts");
    let router = app.router.clone();
    let client = ConnTest::new(app.router).secret_key_base(key_base);
    let table = AppRouter::ROUTE_TABLE;
    assert_eq!(table.len(), AppRouter::ROUTES.len());
    for route in table {
        let path = concrete(route.path);
        let method = match route.method {
            "*" => http::Method::GET,
            method => method.parse().expect("a method"),
        };
        assert_eq!(router.recognize(&method, &path), Some(route.path), "{route:?}");
        let resp = client.request(method.clone(), &path).send().await;
        assert_ne!(resp.status(), 405, "{route:?}");
        if !route.path.contains(':') && route.method != "*" {
            assert_ne!(resp.status(), 404, "{route:?}");
        }
    }
    assert_eq!(router.recognize(&http::Method::GET, "/no/such/page"), None);
    // Each line of the printed table is one route, with its helper and pipelines.
    let printed = fawkes::router::route_table(table);
    assert_eq!(printed.lines().count(), table.len());
    let show = printed.lines().find(|l| l.contains("GET") && l.contains("/api/rooms/:id")).unwrap();
    assert!(show.starts_with("room_show_path "), "{show}");
    assert!(show.contains("crate::controllers::room_controller::show") && show.ends_with("| api"));
}
