fawkes::router! {
    scope "/" {}
}

fn main() {}
