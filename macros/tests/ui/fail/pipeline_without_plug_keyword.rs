async fn tag(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    pipeline api {
        plug tag;
        tag;
    }
}

fn main() {}
