async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    get "/rooms/room-:id" => index;
}

fn main() {}
