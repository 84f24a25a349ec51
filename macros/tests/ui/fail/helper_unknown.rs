mod room_controller {
    pub async fn show(conn: fawkes::Conn) -> fawkes::Conn {
        conn
    }
}

fawkes::router! {
    pub App;
    resources "/rooms" => room_controller, only: [show];
}

fn main() {
    let _ = App::room_index_path();
}
