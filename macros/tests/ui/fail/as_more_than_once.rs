mod room_controller {
    pub async fn index(conn: fawkes::Conn) -> fawkes::Conn {
        conn
    }
}

fawkes::router! {
    pub App;
    resources "/rooms" => room_controller, as: chat, only: [index], as: lobby;
}

fn main() {}
