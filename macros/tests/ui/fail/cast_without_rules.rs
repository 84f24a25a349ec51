#[derive(serde::Deserialize)]
struct NewRoom {
    name: String,
}

async fn create(conn: fawkes::Conn) -> Result<fawkes::Conn, fawkes::ActionError> {
    let room: NewRoom = conn.cast()?;
    Ok(conn.text(room.name))
}

fawkes::router! {
    pub App;
    post "/rooms" => create;
}

fn main() {}
