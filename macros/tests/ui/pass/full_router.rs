//! Every piece of `router!` syntax in one router, and its path helpers checked in `main`.

use std::convert::Infallible;

use fawkes::plug::{accepts, layer};
use fawkes::{ActionError, Body, Conn, Plug};

async fn put_server(conn: Conn) -> Conn {
    conn.put_resp_header("server", "fawkes")
}

struct RequireToken;

impl Plug for RequireToken {
    async fn call(&self, conn: Conn) -> Conn {
        if conn.header("authorization").is_some() {
            conn
        } else {
            ActionError::unauthorized().render_halted(conn)
        }
    }
}

/// A tower layer that does nothing, to show any `tower::Layer` stands in a pipeline.
#[derive(Clone)]
struct Identity;

impl<S> tower::Layer<S> for Identity {
    type Service = S;
    fn layer(&self, inner: S) -> S {
        inner
    }
}

async fn home(conn: Conn) -> Conn {
    conn.text("home")
}

async fn any(conn: Conn) -> Conn {
    let method = conn.method().to_string();
    conn.text(method)
}

async fn fallible(conn: Conn) -> Result<Conn, ActionError> {
    Ok(conn)
}

mod page_controller {
    use fawkes::Conn;

    pub async fn about(conn: Conn) -> Conn {
        conn.html("<p>about</p>")
    }
}

mod room_controller {
    use fawkes::Conn;

    pub async fn index(conn: Conn) -> Conn {
        conn
    }
    pub async fn create(conn: Conn) -> Conn {
        conn
    }
    pub async fn show(conn: Conn) -> Conn {
        conn
    }
    pub async fn update(conn: Conn) -> Conn {
        conn
    }
    pub async fn delete(conn: Conn) -> Conn {
        conn
    }
}

mod message_controller {
    use fawkes::Conn;

    pub async fn index(conn: Conn) -> Conn {
        conn
    }
    pub async fn create(conn: Conn) -> Conn {
        conn
    }
}

#[allow(non_snake_case)]
mod UserController {
    use fawkes::Conn;

    pub async fn index(conn: Conn) -> Conn {
        conn
    }
    pub async fn new(conn: Conn) -> Conn {
        conn
    }
    pub async fn show(conn: Conn) -> Conn {
        conn
    }
    pub async fn edit(conn: Conn) -> Conn {
        conn
    }
}

fn legacy() -> impl tower::Service<
    http::Request<Body>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync {
    tower::service_fn(|_req: http::Request<Body>| async {
        Ok::<_, Infallible>(http::Response::new(Body::from("legacy")))
    })
}

fawkes::router! {
    /// Attributes and doc comments pass through to the generated type.
    pub AppRouter;

    pipeline browser {
        plug put_server;
        plug accepts(["html"]);
    }
    pipeline api {
        plug accepts(["json"]);
        plug RequireToken;
        plug layer(Identity);
    }
    pipeline trailing {}

    get "/" => home;

    scope "/" {
        pipe_through browser;
        get "/about" => page_controller::about;
        scope "/admin" {
            pipe_through [api, trailing];
            resources "/users" => UserController, only: [index, new, show, edit];
        }
    }

    scope "/api" {
        pipe_through api, trailing;
        get "/healthz" => fawkes::telemetry::healthz;
        post "/echo/:id" => fallible, as: echo;
        put "/echo/:id" => fallible, as: echo;
        patch "/items/:id" => home, as: item;
        delete "/items/:id" => home, as: item;
        options "/items" => home, as: item_options;
        head "/items" => home, as: item_head;
        match "/any" => any;
        get "/files/*path" => home, as: file;
        resources "/rooms" => room_controller, except: [new, edit] {
            resources "/messages" => message_controller, only: [index, create];
        }
        resources "/lobbies" => room_controller, only: [show], as: lobby;
        forward "/legacy" => legacy();
    }
}

fn main() {
    let _router: fawkes::Router = AppRouter::new().into();
    assert_eq!(AppRouter::home_path(), "/");
    assert_eq!(AppRouter::page_about_path(), "/about");
    assert_eq!(AppRouter::user_index_path(), "/admin/users");
    assert_eq!(AppRouter::user_new_path(), "/admin/users/new");
    assert_eq!(AppRouter::user_edit_path(3), "/admin/users/3/edit");
    assert_eq!(AppRouter::echo_path("a b"), "/api/echo/a%20b");
    assert_eq!(AppRouter::item_path(7), "/api/items/7");
    assert_eq!(AppRouter::item_options_path(), "/api/items");
    assert_eq!(AppRouter::file_path("a/b c.txt"), "/api/files/a/b%20c.txt");
    assert_eq!(AppRouter::room_index_path(), "/api/rooms");
    assert_eq!(AppRouter::room_show_path(42), "/api/rooms/42");
    assert_eq!(AppRouter::room_message_index_path(42), "/api/rooms/42/messages");
    assert_eq!(AppRouter::room_message_create_path("x/y"), "/api/rooms/x%2Fy/messages");
    assert_eq!(AppRouter::lobby_show_path(1), "/api/lobbies/1");
    assert_eq!(AppRouter::any_path(), "/api/any");
    assert!(AppRouter::ROUTES.contains(&("*", "/api/any")));
    assert!(AppRouter::ROUTES.contains(&("*", "/api/legacy")));
    assert!(AppRouter::ROUTES.contains(&("PUT", "/api/rooms/:id")));
    assert!(!AppRouter::ROUTES.contains(&("GET", "/api/rooms/new")));
}
