mod room_controller {}

fawkes::router! {
    pub App;
    resources "/rooms" => room_controller, except: [new, edit, list, create, update, delete, show, index];
}

fn main() {}
