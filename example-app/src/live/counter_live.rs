//! `/live/counter`: a count on the server, changed by clicks.

use fawkes::live::{html, LiveSocket, LiveView, Rendered};
use serde_json::{Map, Value};

use crate::router::AppState;

/// The largest step `?step=` may set.
pub const MAX_STEP: i64 = 1_000;

/// A count (starting at 0) that `inc` and `dec` change by the step, which the URL's `step`
/// param sets (a live patch: the URL changes, the page does not reload).
///
/// The page's ids are a contract tests rely on: `#count`, `#step`, `#inc`, `#dec`,
/// `#step-5` (a patch link to `?step=5`), `#to-rooms` (a live navigation to `/live/rooms`),
/// `#done` (the server navigates to `/live/rooms`, where a flash says what the count was).
#[derive(Debug)]
pub struct CounterLive {
    count: i64,
    step: i64,
}

impl LiveView<AppState> for CounterLive {
    type Info = ();

    async fn mount(_params: &Map<String, Value>, socket: &mut LiveSocket<AppState>) -> Self {
        socket.page_title("Counter · Fawkes");
        Self { count: 0, step: 1 }
    }

    async fn handle_params(
        &mut self,
        params: &Map<String, Value>,
        _url: &str,
        _socket: &mut LiveSocket<AppState>,
    ) {
        // A missing or bad step is 1: the page never fails on its URL.
        self.step = params
            .get("step")
            .and_then(Value::as_str)
            .and_then(|step| step.parse::<i64>().ok())
            .filter(|step| (1..=MAX_STEP).contains(step))
            .unwrap_or(1);
    }

    async fn handle_event(
        &mut self,
        event: &str,
        _value: Value,
        socket: &mut LiveSocket<AppState>,
    ) {
        match event {
            "inc" => self.count = self.count.saturating_add(self.step),
            "dec" => self.count = self.count.saturating_sub(self.step),
            "done" => {
                // Shown by the next view: the flash travels with the navigation.
                socket.put_flash("info", format!("You counted to {}.", self.count));
                socket.push_navigate("/live/rooms");
            }
            _ => tracing::debug!(event, "the counter ignores an unknown event"),
        }
    }

    fn render(&self) -> Rendered {
        let (count, step) = (self.count, self.step);
        html!(
            r#"<section class="live-counter">
  <h1>Counter</h1>
  <p class="count">Count: <span id="count">{count}</span></p>
  <p>Step: <span id="step">{step}</span></p>
  <div class="row">
    <button id="dec" class="button secondary" phx-click="dec">−</button>
    <button id="inc" class="button" phx-click="inc">+</button>
    <button id="done" class="button secondary" phx-click="done">Done</button>
  </div>
  <p class="links">
    <a id="step-1" href="/live/counter" data-phx-link="patch" data-phx-link-state="push">step 1</a>
    <a id="step-5" href="/live/counter?step=5" data-phx-link="patch" data-phx-link-state="push">step 5</a>
    <a id="to-rooms" href="/live/rooms" data-phx-link="redirect" data-phx-link-state="push">the rooms, live</a>
  </p>
</section>"#
        )
    }
}
