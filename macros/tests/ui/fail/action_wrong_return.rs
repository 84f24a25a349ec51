mod room_controller {
    pub async fn index(_conn: fawkes::Conn) -> String {
        "rooms".to_owned()
    }
}

fawkes::router! {
    pub App;
    get "/rooms" => room_controller::index;
}

fn main() {}
