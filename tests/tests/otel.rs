//! OpenTelemetry (feature `otel`) against a real OTLP/HTTP receiver: two services, each on
//! its own runtime and thread with its own subscriber and exporter, as two processes would
//! be. A request carrying a `traceparent` reaches the caller, which calls the second service
//! with its context injected; both export to the receiver, which decodes the protobuf and
//! finds one trace: the caller's server span a child of the incoming span, the callee's a
//! child of the caller's, each named by method and route with the HTTP conventions'
//! attributes. A WebSocket opened with a `traceparent` gives its channel join a span in that
//! trace, and each message a span linked to the join. The trace id is in the logs, text and
//! JSON.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::otel::Otel;
use fawkes::serializer::Payload;
use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use fawkes::{Conn, Endpoint, State};
use futures_util::{SinkExt as _, StreamExt as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tracing_subscriber::layer::SubscriberExt as _;

/// What the receiver decoded: each span with its service's name.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn receive(mut conn: Conn, received: State<Received>) -> Conn {
    let body = conn.take_body().collect(16 << 20).await.expect("a body");
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut spans = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
        }
    }
    conn.put_resp_header("content-type", "application/x-protobuf")
        .send_resp(fawkes::http::StatusCode::OK, fawkes::Body::empty())
}

fawkes::router! {
    /// The OTLP receiver.
    pub Receiver;
    state Received;
    post "/v1/traces" => receive;
}

/// The callee's route: a path param, so the route differs from the path.
async fn hello(conn: Conn) -> Conn {
    let name: String = conn.param("name").unwrap_or_default();
    tracing::info!(name = %name, "greeting");
    conn.text(format!("hello {name}"))
}

struct Room;

impl Channel for Room {
    type Info = ();

    async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
        Ok((Room, json!({})))
    }

    async fn handle_in(&mut self, event: &str, payload: Payload, _: &mut ChannelSocket) -> Reply {
        match event {
            "ping" => Reply::Ok(payload),
            _ => Reply::error(json!({"reason": "unknown event"})),
        }
    }
}

#[derive(Default)]
struct RoomSocket;

impl Socket for RoomSocket {
    async fn connect(
        &self,
        _: &Map<String, Value>,
        _: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<Room>("room:*")
    }
}

fawkes::router! {
    /// The service called.
    pub Callee;
    get "/hello/:name" => hello;
    socket "/socket" => RoomSocket;
}

/// The caller's route: calls the callee with the trace context injected.
async fn call(conn: Conn, callee: State<SocketAddr>) -> Conn {
    let callee = *callee;
    let mut headers = fawkes::http::HeaderMap::new();
    fawkes::otel::inject(&mut headers);
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{callee}/hello/ada"))
        .headers(headers)
        .send()
        .await
        .expect("the callee answers");
    let text = answer.text().await.unwrap_or_default();
    conn.text(text)
}

fawkes::router! {
    /// The service that calls.
    pub Caller;
    state SocketAddr;
    get "/call" => call;
}

/// A log sink the test reads.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A service on a thread of its own: a current-thread runtime whose thread's default
/// subscriber logs to `logs` (as JSON when `json`) and exports to `receiver` as `name`.
struct Service {
    addr: SocketAddr,
    otel: Arc<Otel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn start(
        name: &'static str,
        receiver: SocketAddr,
        logs: Logs,
        json: bool,
        router: impl FnOnce() -> fawkes::Router + Send + 'static,
    ) -> Self {
        let otel = Arc::new(Otel::new(&format!("http://{receiver}"), name).expect("an exporter"));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let layer_otel = otel.clone();
        let thread = std::thread::spawn(move || {
            let (text_logs, json_logs) = (logs.clone(), logs);
            let text = tracing_subscriber::fmt::layer()
                .with_writer(move || text_logs.clone())
                .with_ansi(false);
            let as_json =
                tracing_subscriber::fmt::layer().json().with_writer(move || json_logs.clone());
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with((!json).then_some(text))
                .with(json.then_some(as_json))
                .with(layer_otel.layer());
            let _default = tracing::subscriber::set_default(subscriber);
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let running = Endpoint::new(router())
                    .bind(tests::loopback())
                    .start()
                    .await
                    .expect("the service starts");
                ready_tx.send(running.local_addr()).unwrap();
                let _ = stopped.await;
                running.shutdown();
            });
        });
        let addr = ready_rx.recv_timeout(Duration::from_secs(20)).expect("the service is up");
        Self { addr, otel, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The span named `name` of `service`, once the receiver has it (flushing both services).
async fn span_named(received: &Received, services: &[&Service], service: &str, name: &str) -> Span {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .find(|(s, span)| s == service && span.name == name)
            .map(|(_, span)| span.clone());
        if let Some(span) = found {
            return span;
        }
        let names: Vec<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|(s, span)| format!("{s}: {}", span.name))
            .collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span {name:?} from {service}; got {names:?}"
        );
        let otels: Vec<Arc<Otel>> = services.iter().map(|s| s.otel.clone()).collect();
        tokio::task::spawn_blocking(move || otels.iter().for_each(|otel| otel.force_flush()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_crosses_two_services_and_a_channel() {
    let received = Received::default();
    let receiver = Endpoint::new(Receiver::new(received.clone()))
        .bind(tests::loopback())
        .start()
        .await
        .unwrap();
    let (caller_logs, callee_logs) = (Logs::default(), Logs::default());
    let callee = Service::start("rooms", receiver.local_addr(), callee_logs.clone(), true, || {
        Callee::new().into()
    });
    let callee_addr = callee.addr;
    let caller =
        Service::start("front", receiver.local_addr(), caller_logs.clone(), false, move || {
            Caller::new(callee_addr).into()
        });

    // The incoming request carries a trace: the caller continues it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let answer = tests::http1_client()
        .get(format!("http://{}/call", caller.addr))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "hello ada");

    let front = span_named(&received, &[&caller, &callee], "front", "GET /call").await;
    assert_eq!(hex(&front.trace_id), trace_id, "the caller continues the incoming trace");
    assert_eq!(hex(&front.parent_span_id), parent_id);
    assert_eq!(front.kind, SpanKind::Server as i32);
    let rooms = span_named(&received, &[&caller, &callee], "rooms", "GET /hello/:name").await;
    assert_eq!(hex(&rooms.trace_id), trace_id, "the callee continues it too");
    assert_eq!(rooms.parent_span_id, front.span_id, "a child of the caller's span");
    assert_eq!(rooms.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/hello/:name"),
        ("http.response.status_code", "200"),
        ("url.path", "/hello/ada"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
    ] {
        assert_eq!(attr(&rooms, key).as_deref(), Some(value), "{key}");
    }

    // The trace id is in the request's log lines: text on the caller, JSON on the callee.
    let text = caller_logs.text();
    assert!(
        text.lines().any(|l| l.contains("sent") && l.contains(&format!("trace_id={trace_id}"))),
        "{text}"
    );
    let json_line = callee_logs
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "greeting")
        .expect("the callee logged its greeting");
    assert_eq!(json_line["span"]["trace_id"], json!(trace_id), "{json_line}");

    // A socket opened within a trace: its channel's join is a span of it, each message a
    // span linked to the join.
    let socket_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut request =
        format!("ws://{}/socket/websocket?vsn=2.0.0", callee.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("traceparent", format!("00-{socket_trace}-b7ad6b7169203331-01").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("the socket opens");
    ws.send(Message::text(r#"["1","1","room:lobby","phx_join",{}]"#)).await.unwrap();
    ws.send(Message::text(r#"["1","2","room:lobby","ping",{"n":1}]"#)).await.unwrap();
    let mut replies = 0;
    while replies < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if frame.to_text().unwrap_or_default().contains("phx_reply") {
            replies += 1;
        }
    }
    let upgrade = span_named(&received, &[&caller, &callee], "rooms", "GET /socket").await;
    assert_eq!(hex(&upgrade.trace_id), socket_trace);
    let join = span_named(&received, &[&caller, &callee], "rooms", "join room:*").await;
    assert_eq!(hex(&join.trace_id), socket_trace, "the join continues the socket's trace");
    assert_eq!(join.parent_span_id, upgrade.span_id);
    assert_eq!(join.kind, SpanKind::Consumer as i32);
    assert_eq!(attr(&join, "messaging.system").as_deref(), Some("phoenix"));
    assert_eq!(attr(&join, "messaging.destination.name").as_deref(), Some("room:lobby"));
    assert_eq!(attr(&join, "messaging.destination.template").as_deref(), Some("room:*"));
    let message = span_named(&received, &[&caller, &callee], "rooms", "handle_in room:*").await;
    assert_eq!(attr(&message, "phoenix.event").as_deref(), Some("ping"));
    assert_ne!(hex(&message.trace_id), socket_trace, "a message is a trace of its own");
    let link = message.links.first().expect("linked to its join");
    assert_eq!((&link.trace_id, &link.span_id), (&join.trace_id, &join.span_id));
    drop(ws);

    drop(caller);
    drop(callee);
    receiver.shutdown();
}
