async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

async fn list(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    scope "/api" {
        get "/rooms" => index;
    }
    scope "/" {
        get "/api/rooms" => list;
    }
}

fn main() {}
