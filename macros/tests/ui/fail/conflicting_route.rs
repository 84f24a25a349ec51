async fn show(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

async fn show_room(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    get "/rooms/:id" => show;
    post "/rooms/:room_id" => show_room;
    get "/rooms/:room_id" => show_room;
}

fn main() {}
