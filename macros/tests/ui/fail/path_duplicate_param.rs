async fn index(conn: fawkes::Conn) -> fawkes::Conn {
    conn
}

fawkes::router! {
    pub App;
    scope "/rooms/:id" {
        get "/messages/:id" => index;
    }
}

fn main() {}
