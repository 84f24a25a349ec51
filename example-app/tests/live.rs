//! The live pages in process with `LiveViewTest`: rendered as a browser gets them, joined over
//! the app's own live socket, driven as the official client drives them.

mod in_process;

use example_app::router::{live_socket, AppState};
use fawkes::pubsub::PubSub;
use fawkes::security::SecretKeyBase;
use fawkes::test::{ConnTest, LiveTestError, LiveViewTest};
use in_process::{test_db, TestDb};
use serde_json::json;

struct App {
    http: ConnTest,
    state: AppState,
    _db: TestDb,
}

async fn app() -> App {
    let db = test_db().await;
    let key_base = SecretKeyBase::generate();
    let app = example_app::app(&db.url, key_base.clone()).await.expect("app starts");
    let http = ConnTest::with_pubsub(app.router, PubSub::new("live")).secret_key_base(key_base);
    App { http, state: app.state, _db: db }
}

impl App {
    async fn live(&self, path: &str) -> LiveViewTest {
        LiveViewTest::live(&self.http, live_socket(&self.state), path).await.expect("joined")
    }
}

/// The text of the element with `id` in `html`.
fn text_of(html: &str, id: &str) -> String {
    let open = format!("id=\"{id}\">");
    let start = html.find(&open).unwrap_or_else(|| panic!("no #{id} in {html}")) + open.len();
    let end = html[start..].find('<').expect("a closing tag") + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_counter_counts_by_its_step_and_patches_the_url() {
    let app = app().await;
    let mut view = app.live("/live/counter").await;
    assert_eq!(text_of(&view.render(), "count"), "0");
    let html = view.render_click("inc", json!({"value": ""})).await;
    assert_eq!(text_of(&html, "count"), "1");
    let html = view.render_patch("/live/counter?step=5").await;
    assert_eq!(text_of(&html, "step"), "5");
    assert_eq!(text_of(&view.render_click("inc", json!({})).await, "count"), "6");
    assert_eq!(text_of(&view.render_click("dec", json!({})).await, "count"), "1");
    // A step the page cannot take is 1, never an error.
    for bad in ["?step=0", "?step=-3", "?step=x", "?step=99999999999999999999"] {
        let html = view.render_patch(&format!("/live/counter{bad}")).await;
        assert_eq!(text_of(&html, "step"), "1", "{bad}");
    }
    // Unknown events change nothing.
    assert_eq!(text_of(&view.render_click("hack", json!({})).await, "count"), "1");
}

#[tokio::test]
async fn the_rooms_form_validates_saves_and_the_list_follows_every_creation() {
    let app = app().await;
    let mut view = app.live("/live/rooms").await;
    let mut other = app.live("/live/rooms").await;
    assert!(view.render().contains("<ul id=\"rooms\"></ul>"), "{}", view.render());

    // Errors show once the field was touched.
    let untouched = view.render_change("validate", "room%5B_unused_name%5D=&room%5Bname%5D=").await;
    assert!(!untouched.contains("can&#39;t be blank") && !untouched.contains("can't be blank"));
    let blank = view.render_change("validate", "room%5Bname%5D=").await;
    assert!(blank.contains("can&#39;t be blank"), "{blank}");
    let long = format!("room%5Bname%5D={}", "x".repeat(101));
    let html = view.render_change("validate", &long).await;
    assert!(html.contains("should be at most 100 character(s)"), "{html}");
    let html = view.render_submit("save", "room%5Bname%5D=").await;
    assert!(html.contains("can&#39;t be blank"), "a blank save is refused: {html}");

    // A save creates the room; every open page, this one included, lists it from the broadcast.
    let saved = view.render_submit("save", "room%5Bname%5D=%3Cb%3Eops%3C%2Fb%3E").await;
    assert!(saved.contains("Room &lt;b&gt;ops&lt;/b&gt; created.</p>"), "a flash: {saved}");
    let html = view.render_pushed().await;
    assert!(html.contains("&lt;b&gt;ops&lt;/b&gt;</li>"), "escaped, listed: {html}");
    // A click on the flash clears it (the client sends `lv:clear-flash` with its kind).
    let cleared = view.render_click("lv:clear-flash", json!({"key": "info"})).await;
    assert!(!cleared.contains("id=\"flash-info\""), "{cleared}");
    assert!(other.render_pushed().await.contains("&lt;b&gt;ops&lt;/b&gt;</li>"));

    // A room created over the JSON API reaches the pages the same way.
    let created = app.http.post("/api/rooms").json(&json!({"room": {"name": "api"}})).send().await;
    created.assert_status(201);
    assert!(view.render_pushed().await.contains(">api</li>"));
    assert!(other.render_pushed().await.contains(">api</li>"));
}

#[tokio::test]
async fn the_counter_links_to_the_rooms_and_other_paths_are_not_live() {
    let app = app().await;
    let view = app.live("/live/counter").await;
    assert!(view.render().contains("id=\"to-rooms\" href=\"/live/rooms\""));
    // `live` routes get path helpers named after their view, and the socket serves them.
    assert_eq!(example_app::AppRouter::counter_live_path(), "/live/counter");
    assert_eq!(example_app::AppRouter::rooms_live_path(), "/live/rooms");
    // A path that is no live page is no live view.
    let missing = LiveViewTest::live(&app.http, live_socket(&app.state), "/live/nothing").await;
    assert_eq!(missing.unwrap_err(), LiveTestError::Http(404, None));
}
