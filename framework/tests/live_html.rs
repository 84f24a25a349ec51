//! `html!`: what a template renders, what the client is sent whole, what a diff carries.

use fawkes::live::{html, Dynamic, Rendered};
use serde_json::json;

struct Room {
    name: String,
    members: u32,
}

fn page(title: &str, rooms: &[Room], admin: bool) -> Rendered {
    html!(
        "<section><h1 title=\"{title}\">{title}</h1>\
         {#if admin}<button phx-click=\"reset\">Reset</button>{:else}<p>read only</p>{/if}\
         <ul id=\"rooms\">{#for room in rooms}<li>{room.name} ({room.members})</li>{/for}</ul>\
         <p>{{literal}}</p></section>"
    )
}

fn rooms(names: &[&str]) -> Vec<Room> {
    names.iter().map(|n| Room { name: (*n).to_owned(), members: 1 }).collect()
}

#[test]
fn a_template_renders_its_html_with_every_value_escaped() {
    let html = page("<Chat & co>", &rooms(&["a", "<b>"]), false).to_html();
    assert_eq!(
        html,
        "<section><h1 title=\"&lt;Chat &amp; co&gt;\">&lt;Chat &amp; co&gt;</h1>\
         <p>read only</p><ul id=\"rooms\"><li>a (1)</li><li>&lt;b&gt; (1)</li></ul>\
         <p>{literal}</p></section>"
    );
}

#[test]
fn the_first_render_carries_statics_and_later_ones_only_changed_values() {
    let first = page("Chat", &rooms(&["a"]), true);
    let json = first.to_json();
    assert_eq!(
        json["s"],
        json!([
            "<section><h1 title=\"",
            "\">",
            "</h1>",
            "<ul id=\"rooms\">",
            "</ul><p>{literal}</p></section>"
        ])
    );
    assert_eq!(json["0"], "Chat");
    assert_eq!(json["2"], json!({"s": ["<button phx-click=\"reset\">Reset</button>"]}));
    assert_eq!(
        json["3"],
        json!({"s": ["<li>", " (", ")</li>"], "k": {"0": {"0": "a", "1": "1"}, "kc": 1}})
    );

    // One room more: the new entry and the count, nothing else.
    let second = page("Chat", &rooms(&["a", "b"]), true);
    assert_eq!(
        second.diff(&first),
        Some(json!({"3": {"k": {"1": {"0": "b", "1": "1"}, "kc": 2}}}))
    );
    // The other branch of the `if` is sent whole; the title is sent where it shows.
    let third = page("Talk", &rooms(&["a", "b"]), false);
    assert_eq!(
        third.diff(&second),
        Some(json!({"0": "Talk", "1": "Talk", "2": {"s": ["<p>read only</p>"]}}))
    );
    assert_eq!(third.diff(&third), None);
}

#[test]
fn numbers_are_sent_as_text_and_parts_nest() {
    let count = 5;
    let inner = html!("<b>{count}</b>");
    let raw = Dynamic::raw("<br>");
    let outer = html!("<div>{inner}{raw}{count * 2}</div>");
    // A number as a JSON number would name a component: it is sent as a string.
    assert_eq!(outer.to_json()["2"], json!("10"));
    assert_eq!(outer.to_json()["0"], json!({"s": ["<b>", "</b>"], "0": "5"}));
    assert_eq!(outer.to_html(), "<div><b>5</b><br>10</div>");
}

#[test]
fn else_if_chains_pick_one_branch() {
    let label =
        |n: i32| html!("<p>{#if n < 0}negative{:else if n == 0}zero{:else}{n}{/if}</p>").to_html();
    assert_eq!(label(-1), "<p>negative</p>");
    assert_eq!(label(0), "<p>zero</p>");
    assert_eq!(label(3), "<p>3</p>");
}

enum Status {
    Open,
    Closed { reason: String },
}

#[test]
fn match_blocks_pick_the_arm_of_the_value() {
    let label = |status: &Status| {
        html!(
            "<p>{#match status}
              {:case Status::Open}open
              {:case Status::Closed { reason }}closed: {reason}
            {/match}</p>"
        )
    };
    assert_eq!(label(&Status::Open).to_html(), "<p>open\n              </p>");
    let closed = label(&Status::Closed { reason: "<late>".into() });
    assert_eq!(closed.to_html(), "<p>closed: &lt;late&gt;\n            </p>");
    // Another arm is another template: sent whole, with its statics.
    assert_eq!(
        closed.diff(&label(&Status::Open)),
        Some(json!({"0": {"s": ["closed: ", "\n            "], "0": "&lt;late&gt;"}}))
    );
}
