fn main() {
    let name = "x";
    let _ = fawkes::live::html!("<div><span>{name}</div>");
}
