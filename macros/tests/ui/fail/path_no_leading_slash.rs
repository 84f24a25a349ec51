async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    scope "/api" {
        get "rooms" => index;
    }
}

fn main() {}
