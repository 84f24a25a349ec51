mod room_controller {
    pub fn index() -> &'static str {
        "rooms"
    }
}

fawkes::router! {
    pub App;
    get "/rooms" => room_controller::index;
}

fn main() {}
