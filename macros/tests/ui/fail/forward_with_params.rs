fawkes::router! {
    pub App;
    scope "/api" {
        forward "/legacy/:version" => tower::service_fn(|_req: http::Request<fawkes::Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(fawkes::Body::empty()))
        });
    }
}

fn main() {}
