mod room_controller {
    pub async fn show(conn: fawkes::Conn) -> fawkes::Conn {
        conn
    }
}

mod message_controller {
    pub async fn show(conn: fawkes::Conn) -> fawkes::Conn {
        conn
    }
}

fawkes::router! {
    pub App;
    resources "/rooms" => room_controller, only: [show] {
        resources "/messages" => message_controller, only: [show];
    }
}

fn main() {
    let _ = App::room_show_path(1);
    let _ = App::room_message_show_path(7);
}
