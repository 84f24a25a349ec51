async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    scope "/" {
        pipe_through browser;
        get "/" => index;
    }
}

fn main() {}
