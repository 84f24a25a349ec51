async fn show(conn: fawkes::Conn, id: u64) -> fawkes::Conn {
    conn.text(id.to_string())
}

fawkes::router! {
    pub App;
    get "/rooms/:id" => show;
}

fn main() {}
