fawkes::router! {
    pub App;
    scope "/api" {
        pipeline api {}
    }
}

fn main() {}
