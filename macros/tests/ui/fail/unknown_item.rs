async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    scope "/" {
        route "/" => index;
    }
}

fn main() {}
