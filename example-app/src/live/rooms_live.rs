//! `/live/rooms`: the chat's rooms, rendered live.

use fawkes::live::{html, LiveSocket, LiveView, Rendered};
use serde_json::{Map, Value};

use crate::chat::{self, Room};
use crate::router::AppState;

/// The rooms of the database, as `/api/rooms` lists them (the first page), in
/// `<ul id="rooms">`, one `<li>` each; names are escaped.
#[derive(Debug)]
pub struct RoomsLive {
    rooms: Vec<Room>,
    error: bool,
}

impl LiveView<AppState> for RoomsLive {
    async fn mount(_params: &Map<String, Value>, socket: &mut LiveSocket<AppState>) -> Self {
        socket.page_title("Rooms · Fawkes");
        match chat::list_rooms(&socket.state().repo, 0).await {
            Ok(rooms) => Self { rooms, error: false },
            Err(err) => {
                tracing::error!(error = %err, "cannot list the rooms");
                Self { rooms: Vec::new(), error: true }
            }
        }
    }

    async fn handle_event(
        &mut self,
        _event: &str,
        _value: Value,
        _socket: &mut LiveSocket<AppState>,
    ) {
    }

    fn render(&self) -> Rendered {
        let (rooms, error) = (&self.rooms, self.error);
        html!(
            r#"<section class="live-rooms">
  <h1>Rooms</h1>
  {#if error}<p class="error-text">The rooms cannot be listed right now.</p>{/if}
  <ul id="rooms">{#for room in rooms}<li data-id="{room.id}">{room.name}</li>{/for}</ul>
  <p><a id="to-counter" href="/live/counter" data-phx-link="redirect" data-phx-link-state="push">the counter</a></p>
</section>"#
        )
    }
}
