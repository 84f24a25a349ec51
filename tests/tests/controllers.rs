//! Controllers for JSON APIs over real HTTP: typed params from the path, the query, forms and
//! JSON; the router's state handed to actions; validation rules answered in Phoenix's shapes.

use std::sync::Mutex;

use fawkes::{ActionError, Conn, Endpoint, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tests::start;
use validator::Validate;

/// The application state: a todo list in memory.
#[derive(Default)]
struct Todos {
    items: Mutex<Vec<Todo>>,
}

#[derive(Clone, serde::Serialize)]
struct Todo {
    id: u64,
    title: String,
    priority: u8,
}

#[derive(Deserialize, Validate)]
struct NewTodo {
    #[validate(length(min = 3, max = 40))]
    title: String,
    #[validate(range(min = 1, max = 5))]
    priority: u8,
    #[validate(nested)]
    #[serde(default)]
    tags: Vec<Tag>,
    #[validate(email)]
    notify: Option<String>,
}

#[derive(Deserialize, Validate)]
struct Tag {
    #[validate(length(min = 1))]
    name: String,
}

async fn index(conn: Conn, todos: State<Todos>) -> Conn {
    #[derive(Deserialize)]
    struct Query {
        min_priority: Option<u8>,
    }
    let Ok(Query { min_priority }) = conn.params() else {
        return conn.put_status(StatusCode::BAD_REQUEST).text("bad query");
    };
    let items: Vec<Todo> = todos
        .items
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.priority >= min_priority.unwrap_or(0))
        .cloned()
        .collect();
    conn.json(&json!({ "data": items }))
}

async fn create(conn: Conn, todos: State<Todos>) -> Result<Conn, ActionError> {
    let new: NewTodo = conn.cast_in("todo")?;
    let mut items = todos.items.lock().unwrap();
    let todo = Todo { id: items.len() as u64 + 1, title: new.title, priority: new.priority };
    items.push(todo.clone());
    Ok(conn.put_status(StatusCode::CREATED).json(&json!({ "data": todo })))
}

async fn show(conn: Conn, todos: State<Todos>) -> Result<Conn, ActionError> {
    let id: u64 = conn.param("id")?;
    let todo = todos.items.lock().unwrap().iter().find(|t| t.id == id).cloned();
    let todo = todo.ok_or_else(ActionError::not_found)?;
    Ok(conn.json(&json!({ "data": todo })))
}

/// Path and query params in one typed struct.
async fn page(conn: Conn) -> Result<Conn, ActionError> {
    #[derive(Deserialize)]
    struct Page {
        id: u32,
        page: u16,
        verbose: Option<bool>,
    }
    let Page { id, page, verbose } = conn.params()?;
    Ok(conn.json(&json!({ "id": id, "page": page, "verbose": verbose })))
}

fawkes::router! {
    /// A todo API with its store as state.
    pub TodoApi;
    state Todos;

    pipeline api {
        plug fawkes::plug::accepts(["json"]);
    }

    scope "/api" {
        pipe_through api;
        get "/todos" => index;
        post "/todos" => create;
        get "/todos/:id" => show;
        get "/pages/:id" => page;
    }
}

async fn server() -> (fawkes::endpoint::RunningEndpoint, reqwest::Client) {
    (start(Endpoint::new(TodoApi::new(Todos::default()))).await, reqwest::Client::new())
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn json_and_form_bodies_decode_into_the_same_typed_params() {
    let (server, client) = server().await;
    let url = format!("{}/api/todos", server.url());
    let (status, body) = send(
        client.post(&url).json(&json!({"todo": {"title": "milk", "priority": 2, "tags": []}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"data": {"id": 1, "title": "milk", "priority": 2}}));

    // A form sends every value as a string: `priority=3` still fills a `u8`, and the empty
    // `notify` is no address at all, as Phoenix reads an empty input.
    let (status, body) = send(
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("todo[title]=bread&todo[priority]=3&todo[notify]=&todo[tags][][name]=food"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["priority"], 3);

    let (status, body) = send(client.get(format!("{url}?min_priority=3"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data": [{"id": 2, "title": "bread", "priority": 3}]}));
}

#[tokio::test]
async fn path_params_are_typed_and_one_that_cannot_exist_is_a_404() {
    let (server, client) = server().await;
    let base = server.url();
    send(
        client
            .post(format!("{base}/api/todos"))
            .json(&json!({"todo": {"title": "milk", "priority": 1}})),
    )
    .await;
    assert_eq!(send(client.get(format!("{base}/api/todos/1"))).await.0, StatusCode::OK);
    assert_eq!(
        send(client.get(format!("{base}/api/todos/2"))).await,
        (StatusCode::NOT_FOUND, json!({"errors": {"detail": "Not Found"}}))
    );
    // Not a number, negative, past u64: no todo can have that id.
    for id in ["abc", "-1", "99999999999999999999999", "1.5"] {
        assert_eq!(
            send(client.get(format!("{base}/api/todos/{id}"))).await,
            (StatusCode::NOT_FOUND, json!({"errors": {"detail": "Not Found"}})),
            "{id}"
        );
    }

    // In a params struct, the path's `id` is typed the same way, next to the query's fields.
    assert_eq!(
        send(client.get(format!("{base}/api/pages/7?page=2&verbose=true"))).await,
        (StatusCode::OK, json!({"id": 7, "page": 2, "verbose": true}))
    );
    assert_eq!(
        send(client.get(format!("{base}/api/pages/7?page=2&verbose="))).await.1["verbose"],
        Value::Null
    );
    assert_eq!(
        send(client.get(format!("{base}/api/pages/x?page=2"))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(client.get(format!("{base}/api/pages/7?page=many"))).await,
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": {"page": ["is invalid"]}}))
    );
    assert_eq!(
        send(client.get(format!("{base}/api/pages/7"))).await,
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": {"page": ["can't be blank"]}}))
    );
}

#[tokio::test]
async fn every_failed_rule_is_reported_per_field_in_phoenix_words() {
    let (server, client) = server().await;
    let url = format!("{}/api/todos", server.url());
    let (status, body) = send(client.post(&url).json(&json!({"todo": {
        "title": "no",
        "priority": 9,
        "notify": "not-an-address",
        "tags": [{"name": "ok"}, {"name": ""}],
    }})))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"errors": {
            "title": ["should be at least 3 character(s)"],
            "priority": ["must be less than or equal to 5"],
            "notify": ["has invalid format"],
            "tags": [{}, {"name": ["should be at least 1 character(s)"]}],
        }})
    );

    // Decoding errors name the same fields as the rules: `title`, not `todo.title`.
    assert_eq!(
        send(client.post(&url).json(&json!({"todo": {"priority": 1}}))).await,
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": {"title": ["can't be blank"]}}))
    );
    assert_eq!(
        send(client.post(&url).json(&json!({"todo": {"title": "milk", "priority": "high"}}))).await,
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": {"priority": ["is invalid"]}}))
    );
    assert_eq!(
        send(client.post(&url).json(&json!({"todo": {"title": 5, "priority": 1}}))).await,
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"errors": {"title": ["is invalid"]}}))
    );
    // Params without the `todo` object: the request is not one this action reads.
    let (status, body) = send(client.post(&url).json(&json!({"title": "milk"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["todo"][0].as_str().unwrap().contains("expected an object"), "{body}");
    // Nothing invalid was stored.
    assert_eq!(send(client.get(&url)).await.1, json!({"data": []}));
}
