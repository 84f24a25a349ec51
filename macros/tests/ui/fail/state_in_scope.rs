struct AppState;

async fn hello(conn: fawkes::Conn) -> fawkes::Conn {
    conn.text("hello")
}

fawkes::router! {
    pub App;
    scope "/" {
        state AppState;
        get "/" => hello;
    }
}

fn main() {}
