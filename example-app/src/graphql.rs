//! The chat as a GraphQL schema, at `/api/graphql` and over the socket's
//! `__absinthe__:control` channel: rooms and their messages, a `createMessage` mutation and a
//! `messageAdded(roomId)` subscription.
//!
//! A message reaches `messageAdded` however it was posted (over the REST API, GraphQL, or a
//! room's channel) and on whichever replica: every path broadcasts `new_msg` on the room's
//! topic, and the subscription is that topic's broadcasts, through the cluster's pubsub.
//!
//! What a query may cost is bounded: lists take `first`/`last` (100 at most) and count that
//! many times toward the complexity limit, queries nest [`MAX_DEPTH`] deep at most and cost
//! [`MAX_COMPLEXITY`] at most; writes count against the client's write budget, as the API's
//! do. In production (`FAWKES_ENV=prod`) introspection is off and there is no GraphiQL.

use std::net::IpAddr;

use async_graphql::{
    ComplexObject, Context, ErrorExtensions as _, Object, Result, Schema, SimpleObject,
    Subscription, ID,
};
use fawkes::graphql::{ContextExt as _, GraphQL};
use fawkes::security::RateLimit;
use fawkes::Conn;
use futures_util::{Stream, StreamExt as _};
use serde_json::Value;

use crate::channels::room_topic;
use crate::chat::{self, MessageAttrs};
use crate::controllers::{iso8601, message_json};
use crate::keys::AppEnv;
use crate::router::ClientLimits;
use crate::Repo;

/// The schema.
pub type ChatSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// How deeply a query may nest fields: the standard introspection query (GraphiQL's) reaches
/// 13, through seven levels of `ofType`; the chat's own data, 3.
pub const MAX_DEPTH: usize = 13;

/// What a query may cost: a field costs 1, a list `first`/`last` times its items.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The most items a list field returns.
pub const MAX_PAGE: i32 = 100;

/// The schema over `repo`, with its limits; in production without introspection.
pub fn schema(repo: Repo, env: AppEnv) -> ChatSchema {
    let builder = Schema::build(Query, Mutation, SubscriptionRoot)
        .data(repo)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    let builder = if env == AppEnv::Prod { builder.disable_introspection() } else { builder };
    builder.finish()
}

/// The most GraphQL operations (subscriptions, mostly) running at once over the WebSocket
/// and the Absinthe channel: about 14 KiB each, so about 56 MiB, sized with
/// [`crate::router::MAX_CHANNELS`] for the manifests' 256 MiB.
pub const MAX_RUNNING: usize = 4_000;

/// The most one client runs of [`MAX_RUNNING`]: a tenth.
pub const MAX_RUNNING_PER_CLIENT: usize = MAX_RUNNING / 10;

/// The bytes of documents and variables the running operations keep together.
pub const MAX_RUNNING_BYTES: usize = 16 * 1024 * 1024;

/// The schema served: GraphiQL outside production; clients told apart as the sockets tell
/// them (`TRUSTED_PROXIES`), with no per-client limit under `CLIENT_LIMITS=off`.
pub fn service(repo: Repo, env: AppEnv, clients: &ClientLimits) -> GraphQL<ChatSchema> {
    let graphql = GraphQL::new(schema(repo, env))
        .graphiql(env != AppEnv::Prod)
        .max_running_operations(MAX_RUNNING)
        .max_running_bytes(MAX_RUNNING_BYTES)
        .trusted_proxies(clients.proxies.clone());
    if clients.off {
        graphql.max_connections_per_client(usize::MAX).max_running_operations_per_client(usize::MAX)
    } else {
        graphql.max_running_operations_per_client(MAX_RUNNING_PER_CLIENT)
    }
}

/// The client's write budget, as an assign: put by [`writer`] for HTTP and WebSocket
/// requests, by the socket's `connect` for its channels.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The budget (the app's `writes`).
    pub limit: RateLimit,
    /// The client it is counted for; `None` outside an endpoint.
    pub client: Option<IpAddr>,
}

impl Writer {
    /// Spends one write of the budget.
    ///
    /// # Errors
    ///
    /// Past the budget: a GraphQL error with `code: TOO_MANY_REQUESTS` and `retryAfter`
    /// (seconds) in its extensions.
    pub fn spend(&self) -> Result<()> {
        let Some(client) = self.client else { return Ok(()) };
        self.limit.check(client).map_err(|wait| {
            let secs = fawkes::security::retry_after_secs(wait);
            async_graphql::Error::new("too many writes, retry later").extend_with(|_, e| {
                e.set("code", "TOO_MANY_REQUESTS");
                e.set("retryAfter", secs);
            })
        })
    }
}

/// A plug for the GraphQL pipeline: assigns the client's [`Writer`].
pub fn writer(
    limit: RateLimit,
) -> impl Fn(Conn) -> std::future::Ready<Conn> + Clone + Send + Sync + 'static {
    move |conn: Conn| {
        let peer = conn.conn_info().map(|info| info.remote_addr().ip());
        let client = peer.map(|peer| limit.client_ip(peer, conn.headers()));
        std::future::ready(conn.assign(Writer { limit: limit.clone(), client }))
    }
}

/// A room.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex, name = "Room")]
pub struct RoomNode {
    /// Its id.
    pub id: ID,
    /// Its name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub inserted_at: String,
}

impl From<chat::Room> for RoomNode {
    fn from(room: chat::Room) -> Self {
        Self {
            id: ID(room.id.to_string()),
            name: room.name,
            inserted_at: iso8601(room.inserted_at),
        }
    }
}

/// A message posted in a room.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
#[graphql(name = "Message")]
pub struct MessageNode {
    /// Its id.
    pub id: ID,
    /// The room it was posted in.
    pub room_id: ID,
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When it was posted (RFC 3339).
    pub inserted_at: String,
}

impl MessageNode {
    fn new(message: &chat::Message) -> Self {
        Self {
            id: ID(message.id.to_string()),
            room_id: ID(message.room_id.to_string()),
            author: message.author.clone(),
            body: message.body.clone(),
            inserted_at: iso8601(message.inserted_at),
        }
    }

    /// The message of a `new_msg` broadcast in room `room_id`; `None` for one that was not
    /// stored (it has no id).
    fn from_broadcast(room_id: i64, payload: &Value) -> Option<Self> {
        let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: ID(payload.get("id")?.as_i64()?.to_string()),
            room_id: ID(room_id.to_string()),
            author: text("author")?,
            body: text("body")?,
            inserted_at: text("inserted_at")?,
        })
    }
}

#[ComplexObject]
impl RoomNode {
    /// The room's latest messages, oldest first: `last` of them (20 by default, 100 at most).
    #[graphql(
        complexity = "usize::try_from(last.clamp(1, MAX_PAGE)).unwrap_or(1) * child_complexity"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] last: i32,
    ) -> Result<Vec<MessageNode>> {
        let repo = ctx.data::<Repo>()?;
        let id = room_id(&self.id)?;
        let messages = chat::list_messages(repo, id).await.map_err(internal)?;
        let keep = usize::try_from(last.clamp(1, MAX_PAGE)).unwrap_or(1);
        let skip = messages.len().saturating_sub(keep);
        Ok(messages[skip..].iter().map(MessageNode::new).collect())
    }
}

/// The queries.
#[derive(Debug)]
pub struct Query;

#[Object]
impl Query {
    /// Rooms by id: `first` of them (20 by default, 100 at most) after the id `after`.
    #[graphql(
        complexity = "usize::try_from(first.clamp(1, MAX_PAGE)).unwrap_or(1) * child_complexity"
    )]
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] after: i64,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<RoomNode>> {
        let repo = ctx.data::<Repo>()?;
        let rooms = chat::list_rooms(repo, after).await.map_err(internal)?;
        let take = usize::try_from(first.clamp(1, MAX_PAGE)).unwrap_or(1);
        Ok(rooms.into_iter().take(take).map(RoomNode::from).collect())
    }

    /// One room, if it exists.
    async fn room(&self, ctx: &Context<'_>, id: ID) -> Result<Option<RoomNode>> {
        let repo = ctx.data::<Repo>()?;
        let Ok(id) = room_id(&id) else { return Ok(None) };
        Ok(chat::get_room(repo, id).await.map_err(internal)?.map(RoomNode::from))
    }
}

/// The mutations.
#[derive(Debug)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Posts a message in a room. Members of the room's channel and `messageAdded`
    /// subscribers get it, on every replica.
    async fn create_message(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        author: String,
        body: String,
    ) -> Result<MessageNode> {
        if let Some(writer) = ctx.assign::<Writer>() {
            writer.spend()?;
        }
        let repo = ctx.data::<Repo>()?;
        let id = self::room_id(&room_id)?;
        let attrs = MessageAttrs { author: Some(author), body: Some(body) };
        let message = match chat::create_message(repo, id, attrs).await {
            Ok(message) => message,
            Err(chat::Error::NotFound) => return Err(not_found()),
            Err(chat::Error::Invalid(errors)) => {
                let fields = errors.to_json();
                return Err(async_graphql::Error::new("the message is not valid").extend_with(
                    |_, e| {
                        e.set("code", "UNPROCESSABLE");
                        if let Ok(fields) = async_graphql::Value::from_json(fields.clone()) {
                            e.set("fields", fields);
                        }
                    },
                ));
            }
            Err(err) => return Err(internal(err)),
        };
        ctx.pubsub()?.broadcast(&room_topic(id), "new_msg", message_json::new_msg(&message));
        Ok(MessageNode::new(&message))
    }
}

/// The subscriptions.
#[derive(Debug)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every message posted in the room from now on, however and wherever it was posted.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> Result<impl Stream<Item = MessageNode>> {
        let id = self::room_id(&room_id)?;
        // Only a room that exists: each subscription is a pubsub topic (a Redis subscription
        // in a cluster), so an unchecked id would let a client open topics without bound.
        let repo = ctx.data::<Repo>()?;
        if chat::get_room(repo, id).await.map_err(internal)?.is_none() {
            return Err(not_found());
        }
        let broadcasts = ctx.pubsub()?.subscribe(&room_topic(id)).into_stream();
        Ok(broadcasts.filter_map(move |message| {
            let node = (message.event() == "new_msg")
                .then(|| {
                    message.payload().as_json().and_then(|p| MessageNode::from_broadcast(id, p))
                })
                .flatten();
            std::future::ready(node)
        }))
    }
}

fn room_id(id: &ID) -> Result<i64> {
    id.parse::<i64>().map_err(|_| not_found())
}

fn not_found() -> async_graphql::Error {
    async_graphql::Error::new("room not found").extend_with(|_, e| e.set("code", "NOT_FOUND"))
}

fn internal(err: chat::Error) -> async_graphql::Error {
    tracing::error!(error = %err, "a GraphQL resolver failed");
    async_graphql::Error::new("internal error")
}
