//! `dashboard:*`: the live metrics the `/dashboard` page draws.

use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use serde_json::{json, Value};

use crate::dashboard;
use crate::router::AppState;

/// The channel of [`dashboard::TOPIC`] (`dashboard:metrics`); other `dashboard:` topics are
/// refused.
///
/// The join replies with the latest sample, plus `history`: the samples of the last minute,
/// oldest first, so the page's charts start full. After that, the dashboard worker's `sample`
/// broadcasts reach every member straight from pubsub. Clients send nothing.
#[derive(Debug)]
pub struct DashboardChannel;

impl Channel<AppState> for DashboardChannel {
    type Info = ();

    async fn join(
        topic: &str,
        _payload: Payload,
        socket: &mut ChannelSocket<AppState>,
    ) -> Result<(Self, Value), Value> {
        if topic != dashboard::TOPIC {
            return Err(json!({ "reason": "unknown dashboard" }));
        }
        let history = &socket.state().dashboard;
        let mut reply = history.latest(socket.telemetry());
        if let Some(fields) = reply.as_object_mut() {
            fields.insert("history".to_owned(), Value::Array(history.history()));
        }
        Ok((Self, reply))
    }

    async fn handle_in(
        &mut self,
        _event: &str,
        _payload: Payload,
        _socket: &mut ChannelSocket<AppState>,
    ) -> Reply {
        Reply::error(json!({ "reason": "unknown event" }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fawkes::test::ChannelTest;
    use serde_json::json;

    use crate::channels::UserSocket;
    use crate::Repo;

    const KEYS: &[&str] = &[
        "at_ms",
        "requests",
        "requests_per_sec",
        "latency_p50_ms",
        "latency_p90_ms",
        "latency_p99_ms",
        "connections",
        "sockets",
        "channels",
        "broadcasts_per_sec",
        "deliveries_per_sec",
        "restarts",
        "panics",
        "memory_mb",
    ];

    async fn socket() -> ChannelTest {
        socket_of(crate::dashboard::Dashboard::default()).await
    }

    async fn socket_of(dashboard: crate::dashboard::Dashboard) -> ChannelTest {
        // The socket wants a repo, though this channel never touches it: a private in-memory
        // database, shared by the pool's connections.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let url =
            format!("sqlite:file:dashboard_{}_{n}?mode=memory&cache=shared", std::process::id());
        let repo = Repo::connect(&url).await.expect("in-memory database");
        let key_base = fawkes::security::SecretKeyBase::generate();
        let assets = crate::assets::Assets::load(crate::assets::BUILT_ASSETS_DIR).expect("assets");
        let vendor = crate::assets::Vendor::missing();
        let clients = crate::router::ClientLimits::default();
        let writes = clients.writes();
        let state =
            crate::router::AppState { repo, key_base, dashboard, assets, vendor, clients, writes };
        let user_socket = UserSocket::new(state);
        ChannelTest::connect(user_socket, json!({})).await.expect("connected")
    }

    #[tokio::test]
    async fn joining_the_metrics_replies_with_a_sample_and_its_history() {
        let mut socket = socket().await;
        let reply = socket.join("dashboard:metrics", json!({})).await.expect("joined");
        let fields = reply.as_object().expect("an object");
        for key in KEYS {
            assert!(fields[*key].is_number(), "{key} is a number in {reply}");
        }
        assert!(reply["memory_mb"].as_f64().unwrap() > 0.0, "{reply}");
        let history = reply["history"].as_array().expect("a history");
        assert!(history.len() <= crate::dashboard::HISTORY);
        assert_eq!(fields.len(), KEYS.len() + 1, "no other keys: {reply}");

        // Samples broadcast by the worker reach the member as they are.
        let sample = json!({ "requests": 1 });
        socket.pubsub().broadcast("dashboard:metrics", "sample", sample.clone());
        socket.assert_broadcast("dashboard:metrics", "sample", sample).await;

        let push = socket.push("dashboard:metrics", "anything", json!({}));
        socket.assert_reply(&push, "error", json!({ "reason": "unknown event" })).await;
    }

    /// The history is the socket's dashboard's, the one the app's worker fills: no other.
    #[tokio::test]
    async fn the_join_replies_with_the_history_of_the_sockets_dashboard() {
        let dashboard = crate::dashboard::Dashboard::default();
        let sample = json!({ "at_ms": 1, "requests": 7 });
        dashboard.remember(sample.clone());
        let mut socket = socket_of(dashboard).await;
        let reply = socket.join("dashboard:metrics", json!({})).await.expect("joined");
        assert_eq!(reply["requests"], 7, "{reply}");
        assert_eq!(reply["history"], json!([sample]));
        let mut other = socket_of(crate::dashboard::Dashboard::default()).await;
        let reply = other.join("dashboard:metrics", json!({})).await.expect("joined");
        assert_eq!(reply["history"], json!([]), "another app's history is its own");
    }

    #[tokio::test]
    async fn other_dashboards_are_refused() {
        let mut socket = socket().await;
        let refused = socket.join("dashboard:secrets", json!({})).await;
        assert_eq!(refused, Err(json!({ "reason": "unknown dashboard" })));
    }
}
