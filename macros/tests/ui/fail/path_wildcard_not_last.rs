async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    get "/files/*path/raw" => index;
}

fn main() {}
