fawkes::router! {
    pub App;
    pipeline api { plug fawkes::plug::accepts(["json"]); }
    pipeline browser {}
    pipeline api {}
}

fn main() {}
