//! A todo API as a new user writes it: an in-memory store as the router's state, typed params,
//! validation in Phoenix's shapes, a broadcast to a channel on create, and the tests.
//!
//! `cargo run -p fawkes --example todo_api --features test`, then
//! `curl -d '{"todo":{"title":"milk"}}' -H 'content-type: application/json' localhost:4000/api/todos`.

use std::sync::Mutex;

use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use fawkes::{ActionError, Conn, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use validator::Validate;

/// The store: the router's state.
#[derive(Default)]
struct Todos {
    items: Mutex<Vec<Todo>>,
}

#[derive(Clone, Serialize)]
struct Todo {
    id: u64,
    title: String,
}

#[derive(Deserialize, Validate)]
struct NewTodo {
    #[validate(length(min = 1, max = 200))]
    title: String,
}

async fn index(conn: Conn, todos: State<Todos>) -> Conn {
    let all = todos.items.lock().unwrap().clone();
    conn.json(&json!({ "data": all }))
}

async fn create(conn: Conn, todos: State<Todos>) -> Result<Conn, ActionError> {
    let NewTodo { title } = conn.cast_in("todo")?;
    let todo = {
        let mut all = todos.items.lock().unwrap();
        let todo = Todo { id: all.last().map_or(1, |t| t.id + 1), title };
        all.push(todo.clone());
        todo
    };
    conn.pubsub().broadcast("todos", "created", json!(todo));
    Ok(conn.put_status(StatusCode::CREATED).json(&json!({ "data": todo })))
}

async fn show(conn: Conn, todos: State<Todos>) -> Result<Conn, ActionError> {
    let id: u64 = conn.param("id")?;
    let todo = todos.items.lock().unwrap().iter().find(|t| t.id == id).cloned();
    Ok(conn.json(&json!({ "data": todo.ok_or_else(ActionError::not_found)? })))
}

async fn delete(conn: Conn, todos: State<Todos>) -> Result<Conn, ActionError> {
    let id: u64 = conn.param("id")?;
    let mut all = todos.items.lock().unwrap();
    let index = all.iter().position(|t| t.id == id).ok_or_else(ActionError::not_found)?;
    all.remove(index);
    Ok(conn.send_resp(StatusCode::NO_CONTENT, fawkes::Body::empty()))
}

/// `todos`: every client sees the todos created.
struct TodoChannel;

impl Channel for TodoChannel {
    type Info = ();

    async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
        Ok((TodoChannel, json!({})))
    }

    async fn handle_in(&mut self, _: &str, _: Payload, _: &mut ChannelSocket) -> Reply {
        Reply::error(json!({ "reason": "read only" }))
    }
}

struct TodoSocket;

impl Socket for TodoSocket {
    async fn connect(
        &self,
        _: &Map<String, Value>,
        _: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<TodoChannel>("todos")
    }
}

fawkes::router! {
    /// The todo API.
    pub TodoApi;
    state Todos;

    socket "/socket" => TodoSocket;

    scope "/api" {
        get "/todos" => index;
        post "/todos" => create;
        get "/todos/:id" => show;
        delete "/todos/:id" => delete;
    }
}

#[tokio::main]
async fn main() -> Result<(), fawkes::Error> {
    fawkes::Endpoint::new(TodoApi::new(Todos::default())).bind("127.0.0.1:4000").serve().await
}

#[cfg(test)]
mod tests {
    use fawkes::test::{ChannelTest, ConnTest};
    use fawkes::PubSub;
    use serde_json::json;

    use super::{TodoApi, TodoSocket, Todos};

    #[tokio::test]
    async fn todos_are_created_listed_shown_and_deleted() {
        let api = ConnTest::new(TodoApi::new(Todos::default()));
        let created = api.post("/api/todos").json(&json!({"todo": {"title": "milk"}})).send().await;
        created.assert_status(201).assert_json(&json!({"data": {"id": 1, "title": "milk"}}));
        api.get("/api/todos/1").send().await.assert_status(200);
        api.get("/api/todos")
            .send()
            .await
            .assert_json(&json!({"data": [{"id": 1, "title": "milk"}]}));
        api.delete("/api/todos/1").send().await.assert_status(204);
        api.get("/api/todos/1").send().await.assert_status(404);
        api.get("/api/todos/one").send().await.assert_status(404);
        api.post("/api/todos")
            .json(&json!({"todo": {"title": ""}}))
            .send()
            .await
            .assert_status(422)
            .assert_json(&json!({"errors": {"title": ["should be at least 1 character(s)"]}}));
    }

    #[tokio::test]
    async fn a_todo_created_over_http_reaches_the_channel() {
        let pubsub = PubSub::new("todo test");
        let api = ConnTest::with_pubsub(TodoApi::new(Todos::default()), pubsub.clone());
        let mut socket = ChannelTest::connect_with(TodoSocket, json!({}), pubsub).await.unwrap();
        socket.join("todos", json!({})).await.unwrap();
        api.post("/api/todos")
            .json(&json!({"todo": {"title": "milk"}}))
            .send()
            .await
            .assert_status(201);
        socket.assert_broadcast("todos", "created", json!({"id": 1, "title": "milk"})).await;
    }
}
