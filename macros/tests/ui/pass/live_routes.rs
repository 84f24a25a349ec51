use fawkes::live::{html, LiveSocket, LiveView, Rendered};
use fawkes::security::{fetch_session, FetchSession, SessionConfig};
use serde_json::{Map, Value};

#[derive(Clone)]
struct AppState;

struct RoomLive;

impl LiveView<AppState> for RoomLive {
    type Info = ();
    async fn mount(_: &Map<String, Value>, _: &mut LiveSocket<AppState>) -> Self {
        RoomLive
    }
    async fn handle_event(&mut self, _: &str, _: Value, _: &mut LiveSocket<AppState>) {}
    fn render(&self) -> Rendered {
        html!("<p>room</p>")
    }
}

fn session() -> FetchSession {
    fetch_session(SessionConfig::from_endpoint())
}

fawkes::router! {
    pub App;
    state AppState;
    pipeline browser { plug session(); }
    socket "/live" => App::live_views(fawkes::live::socket(state.clone(), session()));
    scope "/rooms" {
        pipe_through browser;
        live "/:id" => RoomLive;
        live "/:id/edit" => RoomLive, as: edit_room;
    }
}

fn main() {
    let _ = App::new(AppState);
    assert_eq!(App::room_live_path(7), "/rooms/7");
    assert_eq!(App::edit_room_path(7), "/rooms/7/edit");
}
