async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    pipeline browser {}
    pipeline api {}
    scope "/api" {
        pipe_through [api, apii];
        get "/" => index;
    }
}

fn main() {}
