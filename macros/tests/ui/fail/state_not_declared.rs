struct AppState;

async fn hello(conn: fawkes::Conn, _state: fawkes::State<AppState>) -> fawkes::Conn {
    conn.text("hello")
}

fawkes::router! {
    pub App;
    get "/" => hello;
}

fn main() {}
