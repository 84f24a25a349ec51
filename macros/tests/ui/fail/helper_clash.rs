async fn show(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    get "/rooms/:id" => show, as: room;
    get "/lobbies/:id" => show, as: room;
}

fn main() {}
