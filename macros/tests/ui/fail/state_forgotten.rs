struct AppState {
    greeting: String,
}

async fn hello(conn: fawkes::Conn, state: fawkes::State<AppState>) -> fawkes::Conn {
    conn.text(state.greeting.clone())
}

fawkes::router! {
    pub App;
    state AppState;
    get "/" => hello;
}

fn main() {
    let _router = App::new();
}
