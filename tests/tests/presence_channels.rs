//! Presence over real WebSockets: a channel tracks its user after joining; its presence leaves
//! when the channel leaves, crashes or loses its socket, and every member of the topic gets the
//! `presence_state` / `presence_diff` payloads Phoenix clients expect.

mod channel_support;

use channel_support::{connect_v2, eventually, join, recv, send, serve, stop, Ws, DEADLINE};
use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::pubsub::PubSub;
use fawkes::serializer::Payload;
use fawkes::socket::{transport, Channels, ConnectInfo, Refused, Socket};
use serde_json::{json, Map, Value};

struct AfterJoin;

/// Tracks the `user` join param; `crash` panics, `away` updates the meta.
struct Room {
    user: String,
}

impl Channel for Room {
    type Info = AfterJoin;

    async fn join(
        _topic: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        let user = payload.as_json().and_then(|p| p["user"].as_str()).unwrap_or("anon").to_owned();
        let _ = socket.handle().send(AfterJoin);
        Ok((Self { user }, json!({})))
    }

    async fn handle_info(&mut self, AfterJoin: AfterJoin, socket: &mut ChannelSocket) {
        let presence = socket.presence();
        socket.push("presence_state", presence.list(socket.topic()));
        presence.track(socket, &self.user, json!({"status": "here"})).unwrap();
    }

    async fn handle_in(
        &mut self,
        event: &str,
        _payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Reply {
        match event {
            "crash" => panic!("the channel crashes on purpose"),
            "away" => {
                socket.presence().update(socket, &self.user, json!({"status": "away"})).unwrap();
                Reply::ok(json!({}))
            }
            _ => Reply::NoReply,
        }
    }
}

struct PresenceSocket;

impl Socket for PresenceSocket {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<Room>("room:*")
    }
}

/// The next frame with `event`, skipping others (replies, heartbeats).
async fn next_event(ws: &mut Ws, event: &str) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame[3] == event {
            return frame;
        }
    }
}

fn keys(pubsub: &PubSub, topic: &str) -> Vec<String> {
    pubsub.presence().list(topic).as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn presences_follow_their_channels_through_leave_crash_and_disconnect() {
    let server = serve(transport(PresenceSocket)).await;
    let addr = server.local_addr();
    let pubsub = server.pubsub().clone();

    let mut watcher = connect_v2(addr).await;
    join(&mut watcher, "1", "room:1", json!({"user": "watcher"})).await;
    let state = next_event(&mut watcher, "presence_state").await;
    assert_eq!(state[4], json!({}), "nobody is there before the watcher");
    let diff = next_event(&mut watcher, "presence_diff").await;
    assert_eq!(diff[4]["joins"]["watcher"]["metas"][0]["status"], "here");

    // Ada joins: the watcher gets her join; she gets the state with the watcher in it.
    let mut ada = connect_v2(addr).await;
    join(&mut ada, "1", "room:1", json!({"user": "ada"})).await;
    let state = next_event(&mut ada, "presence_state").await;
    let watcher_meta = &state[4]["watcher"]["metas"][0];
    assert_eq!(watcher_meta["status"], "here");
    assert!(watcher_meta["phx_ref"].as_str().is_some_and(|r| !r.is_empty()), "{state}");
    let diff = next_event(&mut watcher, "presence_diff").await;
    let ada_ref = diff[4]["joins"]["ada"]["metas"][0]["phx_ref"].clone();
    assert_eq!(diff[4]["leaves"], json!({}));

    // An update is a join carrying phx_ref_prev plus a leave of the old meta.
    send(&mut ada, json!(["1", "2", "room:1", "away", {}])).await;
    let diff = next_event(&mut watcher, "presence_diff").await;
    let joined = &diff[4]["joins"]["ada"]["metas"][0];
    assert_eq!((&joined["status"], &joined["phx_ref_prev"]), (&json!("away"), &ada_ref));
    assert_eq!(diff[4]["leaves"]["ada"]["metas"][0]["phx_ref"], ada_ref);

    // A crash untracks.
    send(&mut ada, json!(["1", "3", "room:1", "crash", {}])).await;
    let diff = next_event(&mut watcher, "presence_diff").await;
    assert_eq!(diff[4]["leaves"]["ada"]["metas"][0]["status"], "away", "{diff}");
    assert_eq!(keys(&pubsub, "room:1"), ["watcher"]);

    // Rejoining after the crash tracks again; leaving untracks.
    join(&mut ada, "4", "room:1", json!({"user": "ada"})).await;
    next_event(&mut watcher, "presence_diff").await;
    assert_eq!(keys(&pubsub, "room:1"), ["ada", "watcher"]);
    send(&mut ada, json!(["4", "5", "room:1", "phx_leave", {}])).await;
    let diff = next_event(&mut watcher, "presence_diff").await;
    assert!(diff[4]["leaves"]["ada"].is_object(), "{diff}");

    // A socket that goes away untracks its channels.
    join(&mut ada, "6", "room:1", json!({"user": "ada"})).await;
    next_event(&mut watcher, "presence_diff").await;
    drop(ada);
    let diff = next_event(&mut watcher, "presence_diff").await;
    assert!(diff[4]["leaves"]["ada"].is_object(), "{diff}");
    eventually(DEADLINE, "only the watcher to be left", || keys(&pubsub, "room:1") == ["watcher"])
        .await;
    stop(server).await;
}
