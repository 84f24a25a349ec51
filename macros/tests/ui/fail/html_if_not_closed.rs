fn main() {
    let admin = true;
    let _ = fawkes::live::html!("<p>{#if admin}yes</p>");
}
