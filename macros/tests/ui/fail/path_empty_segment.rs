async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    get "/rooms//messages" => index;
}

fn main() {}
