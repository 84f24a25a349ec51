//! `/live/rooms`: the chat's rooms, live, with a form that validates as you type.

use fawkes::live::{html, memo, Info, LiveSocket, LiveView, Rendered};
use serde_json::{Map, Value};

use crate::chat::{self, RoomAttrs};
use crate::router::AppState;

/// The most rooms the page lists: the first page of `/api/rooms`.
const LISTED: usize = chat::ROOM_PAGE as usize;

/// What the view keeps of a typed name: no more than one character past the longest valid
/// one, enough to show the error; a client sending a megabyte of name holds none of it.
fn kept(name: Option<&str>) -> String {
    name.unwrap_or_default().chars().take(chat::MAX_ROOM_NAME_CHARS + 1).collect()
}

/// One room of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    id: i64,
    name: String,
}

/// The rooms of the database (the first page, as `/api/rooms` lists them) in
/// `<ul id="rooms">`, one `<li>` each, names escaped; a room created anywhere (this form in
/// another browser, `POST /api/rooms`, another replica) appears without a reload.
///
/// `<form id="room-form" phx-change="validate" phx-submit="save">` with `room[name]`: a blank
/// or too long name shows its error inside the form as it is typed (not before the field was
/// touched); saving creates the room.
#[derive(Debug)]
pub struct RoomsLive {
    rooms: Vec<Item>,
    name: String,
    errors: Vec<String>,
    load_error: bool,
}

impl RoomsLive {
    /// The form's `room` fields, and whether the name was touched (the client sends
    /// `room[_unused_name]` for a field the user has not interacted with yet).
    fn form(value: &Value) -> (RoomAttrs, bool) {
        let room = value.get("room").and_then(Value::as_object);
        let name = room.and_then(|r| r.get("name")).and_then(Value::as_str).map(str::to_owned);
        let touched = room.is_some_and(|r| !r.contains_key("_unused_name"));
        (RoomAttrs { name }, touched)
    }

    fn show_errors(&mut self, result: Result<(), chat::Error>) {
        self.errors = match result {
            Err(chat::Error::Invalid(errors)) => errors.get("name").unwrap_or_default().to_vec(),
            _ => Vec::new(),
        };
    }
}

impl LiveView<AppState> for RoomsLive {
    type Info = ();

    async fn mount(_params: &Map<String, Value>, socket: &mut LiveSocket<AppState>) -> Self {
        socket.page_title("Rooms · Fawkes");
        // Subscribed before listing, so no room created in between is missed.
        socket.subscribe(chat::ROOMS_TOPIC);
        let (rooms, load_error) = match chat::list_rooms(&socket.state().repo, 0).await {
            Ok(rooms) => {
                (rooms.into_iter().map(|r| Item { id: r.id, name: r.name }).collect(), false)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot list the rooms");
                (Vec::new(), true)
            }
        };
        Self { rooms, name: String::new(), errors: Vec::new(), load_error }
    }

    async fn handle_event(&mut self, event: &str, value: Value, socket: &mut LiveSocket<AppState>) {
        let (attrs, touched) = Self::form(&value);
        match event {
            "validate" => {
                self.name = kept(attrs.name.as_deref());
                let result = if touched { chat::change_room(&attrs) } else { Ok(()) };
                self.show_errors(result);
            }
            "save" => {
                self.name = kept(attrs.name.as_deref());
                // A room is a write, as over the API: the same limit, shared.
                if let Err(wait) = socket.rate_limit(&socket.state().writes) {
                    let secs = fawkes::security::retry_after_secs(wait);
                    self.errors = vec![format!("too many rooms saved: try again in {secs} s")];
                    return;
                }
                match chat::create_room(&socket.state().repo, attrs).await {
                    Ok(room) => {
                        // Every open page, this one included, adds it from the broadcast.
                        if let Some(pubsub) = socket.pubsub() {
                            chat::broadcast_room_created(pubsub, &room);
                        }
                        socket.put_flash("info", format!("Room {} created.", room.name));
                        self.name.clear();
                        self.errors.clear();
                    }
                    Err(err @ chat::Error::Invalid(_)) => self.show_errors(Err(err)),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot create the room");
                        self.errors = vec!["the room could not be saved, try again".to_owned()];
                    }
                }
            }
            _ => tracing::debug!(event, "the rooms view ignores an unknown event"),
        }
    }

    async fn handle_info(&mut self, info: Info<()>, _socket: &mut LiveSocket<AppState>) {
        let Info::Broadcast(broadcast) = info else { return };
        if broadcast.event() != "room_created" {
            return;
        }
        let Some(room) = broadcast.payload().as_json() else { return };
        let (Some(id), Some(name)) = (room["id"].as_i64(), room["name"].as_str()) else { return };
        // The page shows the first page of rooms, as `/api/rooms` and its mount do: a flood of
        // creations does not grow every open page.
        if self.rooms.len() < LISTED && !self.rooms.iter().any(|r| r.id == id) {
            self.rooms.push(Item { id, name: name.to_owned() });
        }
    }

    fn render(&self) -> Rendered {
        let (rooms, name, errors, load_error) =
            (&self.rooms, &self.name, &self.errors, self.load_error);
        let invalid = if errors.is_empty() { "false" } else { "true" };
        // Rendered again only when the rooms change, not on every keystroke in the form.
        let list = memo(rooms, || {
            html!(
                r#"<ul id="rooms">{#for room in rooms}<li data-id="{room.id}">{room.name}</li>{/for}</ul>"#
            )
        });
        html!(
            r#"<section class="live-rooms">
  <h1>Rooms</h1>
  {#if load_error}<p class="error-text">The rooms cannot be listed right now.</p>{/if}
  {list}
  <form id="room-form" phx-change="validate" phx-submit="save" autocomplete="off">
    <label class="field-label" for="room-name">New room</label>
    <div class="row">
      <input class="input" id="room-name" name="room[name]" value="{name}" aria-invalid="{invalid}" placeholder="e.g. design">
      <button class="button" type="submit">Create</button>
    </div>
    {#for error in errors}<p class="error-text room-error">{error}</p>{/for}
  </form>
  <p><a id="to-counter" href="/live/counter" data-phx-link="redirect" data-phx-link-state="push">the counter</a></p>
</section>"#
        )
    }
}
