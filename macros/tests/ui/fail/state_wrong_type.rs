struct AppState;
struct OtherState;

async fn hello(conn: fawkes::Conn, _state: fawkes::State<OtherState>) -> fawkes::Conn {
    conn.text("hello")
}

fawkes::router! {
    pub App;
    state AppState;
    get "/" => hello;
}

fn main() {}
