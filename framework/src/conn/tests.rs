use super::*;
use serde_json::json;

fn get(uri: &str) -> Conn {
    Conn::from_request(Request::get(uri).body(Body::empty()).unwrap())
}

#[test]
fn params_merge_body_then_query_then_path() {
    let mut conn = get("/rooms/7?id=query&page=2&room[name]=q");
    conn.set_body_params(
        Bytes::new(),
        json!({"id": "body", "room": {"name": "b"}, "only_body": 1}).as_object().unwrap().clone(),
    );
    conn.set_path_params(
        super::path_params::PathParams::from_pairs(vec![("id".into(), "7".into())]),
        "/rooms/:id",
    );
    let merged = conn.param_map();
    assert_eq!(merged["id"], "7");
    assert_eq!(merged["page"], "2");
    assert_eq!(merged["room"], json!({"name": "q"}));
    assert_eq!(merged["only_body"], 1);
    assert_eq!(conn.path_param("id"), Some("7"));
    assert_eq!(conn.route(), Some("/rooms/:id"));
}

#[test]
fn params_error_names_the_field() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Room {
        name: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Params {
        room: Room,
    }
    let mut conn = get("/");
    conn.set_body_params(Bytes::new(), json!({"room": {}}).as_object().unwrap().clone());
    let err = conn.params::<Params>().unwrap_err();
    assert_eq!(err.field(), "room.name");
    assert_eq!(err.message(), "can't be blank");
    assert_eq!(err.detail(), Some("missing field `name`"));
    assert_eq!(err.errors().to_json(), json!({"room": {"name": ["can't be blank"]}}));

    conn.set_body_params(Bytes::new(), json!({"room": {"name": 3}}).as_object().unwrap().clone());
    let err = conn.params::<Params>().unwrap_err();
    assert_eq!(err.field(), "room.name");
    assert_eq!(err.message(), "is invalid");
    assert!(err.detail().unwrap().starts_with("invalid type"), "{:?}", err.detail());
}

#[test]
fn response_helpers_set_status_headers_and_body() {
    let conn = get("/").text("hi");
    assert_eq!(conn.status(), StatusCode::OK);
    assert_eq!(conn.resp_headers()["content-type"], "text/plain; charset=utf-8");
    let conn = get("/").redirect("/next");
    assert_eq!(conn.status(), StatusCode::FOUND);
    assert_eq!(conn.resp_headers()["location"], "/next");
    let conn = get("/").redirect("/bad\nheader");
    assert_eq!(conn.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (conn, err) = get("/").try_put_resp_header("x-a", "bad\r\nvalue").unwrap_err();
    assert_eq!(err, InvalidHeader::Value);
    assert!(conn.resp_headers().is_empty());
}

#[test]
fn before_send_runs_last_registered_first() {
    let resp = get("/")
        .register_before_send(|c| c.put_resp_header("x-order", "first"))
        .register_before_send(|c| c.put_resp_header("x-order", "second"))
        .into_response();
    assert_eq!(resp.headers()["x-order"], "first");
}

#[cfg(feature = "test")]
#[tokio::test]
async fn conn_info_shows_in_the_extensions_without_being_inserted_up_front() {
    use crate::endpoint::ConnInfo;

    let supervisor = crate::supervisor::Supervisor::builder().name("conn info").start();
    let info = ConnInfo::for_test(supervisor, crate::PubSub::new("conn-info"), None);
    let mut conn = get("/");
    conn.set_conn_info(info);
    assert!(conn.conn_info().is_some());
    assert_eq!(conn.pubsub().node(), "conn-info");
    assert_eq!(get("/").pubsub().node(), "local", "outside an endpoint, the process's own");
    // Reading the extensions sees it, next to what the request carried.
    conn.extensions_mut().insert(7u8);
    assert!(conn.extensions().get::<ConnInfo>().is_some());
    assert_eq!(conn.extensions().get::<u8>(), Some(&7));
    // A view taken before a change does not hide the change.
    let mut conn = get("/");
    conn.set_conn_info(ConnInfo::for_test(
        crate::supervisor::Supervisor::builder().name("conn info 2").start(),
        crate::PubSub::new("conn-info-2"),
        None,
    ));
    assert!(conn.extensions().get::<u8>().is_none());
    conn.extensions_mut().insert(9u8);
    assert_eq!(conn.extensions().get::<u8>(), Some(&9));
    assert!(conn.extensions().get::<ConnInfo>().is_some());
    // A tower service past the conn gets it in the request.
    let (req, _rest) = conn.into_request();
    assert!(req.extensions().get::<ConnInfo>().is_some());
}

/// Plugs and actions hand the conn over by value at every step: it is one pointer, its state
/// boxed (ARCHITECTURE.md, "A `Conn` is one pointer").
#[test]
fn a_conn_is_one_pointer() {
    assert_eq!(std::mem::size_of::<Conn>(), std::mem::size_of::<usize>());
    assert_eq!(std::mem::size_of::<Option<Conn>>(), std::mem::size_of::<usize>());
}
