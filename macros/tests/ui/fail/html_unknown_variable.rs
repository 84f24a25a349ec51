fn main() {
    let _ = fawkes::live::html!("<p>{missing}</p>");
}
