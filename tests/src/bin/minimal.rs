//! The smallest Fawkes application: one route, served with the defaults, and nothing set up
//! for logging. The `minimal_app` test runs it to see what a new user sees.

async fn hello(conn: fawkes::Conn) -> fawkes::Conn {
    conn.text("hello")
}

fawkes::router! {
    /// One route.
    pub App;
    get "/" => hello;
}

#[tokio::main]
async fn main() -> Result<(), fawkes::Error> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "4000".to_owned());
    fawkes::Endpoint::new(App::new()).bind(format!("127.0.0.1:{port}")).serve().await
}
