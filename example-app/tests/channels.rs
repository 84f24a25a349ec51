//! The socket and its channels in process, with `ChannelTest`, on a fresh database per test;
//! HTTP requests share the channels' repo and pubsub through `ConnTest`.

mod in_process;

use std::time::Duration;

use example_app::channels::UserSocket;
use example_app::chat::{self, RoomAttrs};
use example_app::router::AppState;
use example_app::AppRouter;
use fawkes::pubsub::PubSub;
use fawkes::security::SecretKeyBase;
use fawkes::test::{ChannelTest, ConnTest};
use serde_json::{json, Value};

use in_process::{assert_timestamp, test_db, TestDb};

/// How long a refutation waits for a frame that must not come.
const QUIET: Duration = Duration::from_millis(200);

/// The app on a fresh database: an HTTP client and the pubsub it broadcasts on.
struct App {
    http: ConnTest,
    state: AppState,
    _db: TestDb,
}

impl App {
    async fn start() -> Self {
        let db = test_db().await;
        let app = example_app::app(&db.url, SecretKeyBase::generate()).await.expect("app starts");
        let http = ConnTest::with_pubsub(app.router, PubSub::new("test"));
        Self { http, state: app.state, _db: db }
    }

    /// A socket connected with `params` on the app's repo and pubsub.
    async fn socket(&self, params: Value) -> ChannelTest {
        self.connect(self.user_socket(), params).await
    }

    /// The socket on the app's repo and keys.
    fn user_socket(&self) -> UserSocket {
        UserSocket::new(self.state.clone())
    }

    async fn connect(&self, socket: UserSocket, params: Value) -> ChannelTest {
        ChannelTest::connect_with(socket, params, self.http.pubsub().clone())
            .await
            .expect("the socket accepts the connection")
    }

    async fn room(&self, name: &str) -> i64 {
        let attrs = RoomAttrs { name: Some(name.to_owned()) };
        chat::create_room(&self.state.repo, attrs).await.expect("room created").id
    }
}

/// Pushes `new_msg`, expects the ok reply, and returns the broadcast payload as a separate
/// pubsub subscriber saw it.
async fn post(socket: &mut ChannelTest, topic: &str, author: &str, body: &str) -> Value {
    let mut watcher = socket.pubsub().subscribe(topic);
    let msg_ref = socket.push(topic, "new_msg", json!({"author": author, "body": body}));
    socket.assert_reply(&msg_ref, "ok", json!({})).await;
    let seen = tokio::time::timeout(Duration::from_secs(2), watcher.recv())
        .await
        .expect("the message is broadcast in time")
        .expect("the pubsub is alive");
    assert_eq!(seen.event(), "new_msg");
    let payload = seen.payload().as_json().expect("a JSON payload").clone();
    // The sender is a member too: it receives its own message.
    socket.assert_broadcast(topic, "new_msg", payload.clone()).await;
    payload
}

#[tokio::test]
async fn the_lobby_is_always_open_and_keeps_no_history() {
    let app = App::start().await;
    let mut ada = app.socket(json!({"user": "ada"})).await;
    let mut bob = app.socket(json!({})).await;
    assert_eq!(ada.join("room:lobby", json!({})).await, Ok(json!({})));
    assert_eq!(bob.join("room:lobby", json!({})).await, Ok(json!({})));

    let sent = post(&mut ada, "room:lobby", "ada", "hello").await;
    assert_eq!(sent["author"], "ada");
    assert_eq!(sent["body"], "hello");
    assert_timestamp(&sent["inserted_at"]);
    assert!(sent.get("id").is_none(), "lobby messages are not stored: {sent}");
    bob.assert_broadcast("room:lobby", "new_msg", sent).await;

    let rooms = app.http.get("/api/rooms").send().await.json();
    assert_eq!(rooms, json!({"data": []}), "the lobby is not a room of the database");
}

#[tokio::test]
async fn blank_messages_are_refused_and_not_broadcast() {
    let app = App::start().await;
    let room = app.room("blank").await;
    let topic = format!("room:{room}");
    let mut socket = app.socket(json!({})).await;
    socket.join(&topic, json!({})).await.unwrap();
    socket.join("room:lobby", json!({})).await.unwrap();

    for topic in [topic.as_str(), "room:lobby"] {
        let msg_ref = socket.push(topic, "new_msg", json!({"author": " ", "body": ""}));
        let errors = json!({"errors": {"author": ["can't be blank"], "body": ["can't be blank"]}});
        socket.assert_reply(&msg_ref, "error", errors).await;
        let msg_ref = socket.push(topic, "new_msg", json!({"author": "ada"}));
        let errors = json!({"errors": {"body": ["can't be blank"]}});
        socket.assert_reply(&msg_ref, "error", errors).await;
        let msg_ref = socket.push(topic, "new_msg", json!(["ada", "not an object"]));
        let errors = json!({"errors": {"detail": "expected an object"}});
        socket.assert_reply(&msg_ref, "error", errors).await;
        socket.refute_event(topic, "new_msg", QUIET).await;
    }
    assert_eq!(chat::count_messages(&app.state.repo, room).await.unwrap(), 0);
}

#[tokio::test]
async fn rooms_that_do_not_exist_cannot_be_joined() {
    let app = App::start().await;
    let room = app.room("real").await;
    let mut socket = app.socket(json!({})).await;
    let not_found = Err(json!({"reason": "room not found"}));
    for topic in ["room:999999", "room:abc", "room:", format!("room:0{room}").as_str(), "room:-1"] {
        assert_eq!(socket.join(topic, json!({})).await, not_found, "{topic}");
    }
    assert_eq!(
        socket.join("lobby", json!({})).await,
        Err(json!({"reason": "unmatched topic"})),
        "only room:* is routed"
    );
    assert_eq!(socket.join(&format!("room:{room}"), json!({})).await, Ok(json!({})));

    // Deleted after the join: posting there is refused, nothing is stored.
    app.http.delete(&AppRouter::room_show_path(room)).send().await.assert_status(204);
    let msg_ref =
        socket.push(&format!("room:{room}"), "new_msg", json!({"author": "a", "body": "b"}));
    socket.assert_reply(&msg_ref, "error", json!({"reason": "room not found"})).await;
}

#[tokio::test]
async fn messages_in_a_room_are_stored_and_listed_by_the_api() {
    let app = App::start().await;
    let room = app.room("stored").await;
    let topic = format!("room:{room}");
    let mut socket = app.socket(json!({"user": "ada"})).await;
    socket.join(&topic, json!({})).await.unwrap();

    let first = post(&mut socket, &topic, "ada", "first").await;
    let second = post(&mut socket, &topic, "bob", "second").await;
    let inserted_at = assert_timestamp(&first["inserted_at"]);
    let id = first["id"].as_i64().expect("a stored message has an id");
    assert_eq!(
        first,
        json!({"id": id, "author": "ada", "body": "first", "inserted_at": inserted_at})
    );
    assert!(second["id"].as_i64().unwrap() > id, "ids grow: {first} {second}");

    let listed = app.http.get(&AppRouter::room_message_index_path(room)).send().await;
    listed.assert_status(200);
    let data = listed.json()["data"].clone();
    let bodies: Vec<&Value> = data.as_array().unwrap().iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies, [&json!("first"), &json!("second")]);
    assert_eq!(data[0]["id"], first["id"]);
    assert_eq!(data[0]["room_id"], room);
    assert_eq!(data[0]["inserted_at"], first["inserted_at"]);

    // Unknown events are refused without crashing the channel.
    let msg_ref = socket.push(&topic, "nope", json!({}));
    socket.assert_reply(&msg_ref, "error", json!({"reason": "unknown event"})).await;
    post(&mut socket, &topic, "ada", "still here").await;
}

#[tokio::test]
async fn messages_posted_over_http_reach_the_room_channel() {
    let app = App::start().await;
    let room = app.room("http").await;
    let other = app.room("other").await;
    let mut socket = app.socket(json!({})).await;
    socket.join(&format!("room:{room}"), json!({})).await.unwrap();
    socket.join(&format!("room:{other}"), json!({})).await.unwrap();

    let resp = app
        .http
        .post(&AppRouter::room_message_index_path(room))
        .json(&json!({"message": {"author": "curl", "body": "over http"}}))
        .send()
        .await;
    resp.assert_status(201);
    let data = resp.json()["data"].clone();
    let expected = json!({
        "id": data["id"],
        "author": "curl",
        "body": "over http",
        "inserted_at": data["inserted_at"],
    });
    socket.assert_broadcast(&format!("room:{room}"), "new_msg", expected).await;
    socket.refute_event(&format!("room:{other}"), "new_msg", QUIET).await;

    // A refused post broadcasts nothing.
    app.http
        .post(&AppRouter::room_message_index_path(room))
        .json(&json!({"message": {"author": "curl", "body": " "}}))
        .send()
        .await
        .assert_status(422);
    socket.refute_event(&format!("room:{room}"), "new_msg", QUIET).await;
}

#[tokio::test]
async fn a_named_user_names_the_socket() {
    let app = App::start().await;
    let pubsub = app.http.pubsub().clone();
    let ada = app.socket(json!({"user": "ada"})).await;
    assert_eq!(pubsub.subscriber_count("users_socket:ada"), 1, "ada's socket listens on its id");
    let anonymous = app.socket(json!({"user": "  "})).await;
    assert_eq!(pubsub.subscriber_count("users_socket:anonymous"), 0);
    assert_eq!(pubsub.subscriber_count("users_socket:"), 0);
    ada.close().await;
    anonymous.close().await;
    assert_eq!(pubsub.subscriber_count("users_socket:ada"), 0, "closing unsubscribes");

    let refused = ChannelTest::connect(app.user_socket(), json!({"user": {"a": 1}}));
    assert!(refused.await.is_err(), "a user that is not a string is refused");
}

#[tokio::test]
async fn the_test_channel_exists_only_when_enabled() {
    let app = App::start().await;
    let without = app.user_socket().with_test_channels(false);
    let mut plain = app.connect(without, json!({})).await;
    assert_eq!(plain.join("test:1", json!({})).await, Err(json!({"reason": "unmatched topic"})));

    // The tests' build has the `test-channels` feature, which routes `test:*` by default.
    let mut socket = app.connect(app.user_socket(), json!({"user": "ada"})).await;
    assert_eq!(
        socket.join("test:1", json!({})).await,
        Ok(json!({"user": "ada", "socket_id": "users_socket:ada", "auth_token": null}))
    );
    let msg_ref = socket.push("test:1", "echo", json!({"n": 1}));
    socket.assert_reply(&msg_ref, "ok", json!({"n": 1})).await;
    let msg_ref = socket.push("test:1", "push_me", json!({"n": 2}));
    socket.assert_push("test:1", "pushed", json!({"n": 2})).await;
    socket.assert_reply(&msg_ref, "ok", json!({})).await;

    let msg_ref = socket.push("test:1", "crash", json!({}));
    let frame = socket.next_frame().await.expect("the crash is reported");
    assert_eq!(frame[2], "test:1");
    assert_eq!(frame[3], "phx_error", "{frame}; no reply to {msg_ref}");
    // The socket lives on: a rejoin works.
    assert!(socket.join("test:1", json!({})).await.is_ok());
    let msg_ref = socket.push("test:1", "echo", json!({"again": true}));
    socket.assert_reply(&msg_ref, "ok", json!({"again": true})).await;
}
