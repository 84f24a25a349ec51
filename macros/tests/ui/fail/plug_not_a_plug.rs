fn log_request(conn: &fawkes::Conn) {
    let _ = conn.path();
}

fawkes::router! {
    pub App;
    pipeline api {
        plug fawkes::plug::accepts(["json"]);
        plug log_request;
    }
}

fn main() {}
