fn main() {
    let _ = fawkes::live::html!("<p>{1 +}</p>");
}
