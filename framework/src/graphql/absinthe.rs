//! Absinthe's channel protocol, as `absinthe_phoenix` speaks it and `@absinthe/socket`
//! expects it:
//!
//! - the client joins `__absinthe__:control`;
//! - it pushes `doc` with `{query, variables, operationName}`: a query or a mutation is
//!   answered with its result (`ok` with `{data, errors?}`), or `error` with `{errors}` when
//!   the document is refused before it runs (it does not parse, or fails validation); a
//!   subscription with `ok` and `{subscriptionId}`, or `error` and `{errors}` when the
//!   document is refused or its resolver fails at once (a resolver that fails after awaiting
//!   something, a database lookup say, sends its errors as the subscription's only
//!   `subscription:data`, and the subscription ends);
//! - each result of a subscription arrives as `subscription:data` with
//!   `{result, subscriptionId}`, on the topic named by the id, with no join ref (as Phoenix's
//!   fastlane sends it);
//! - `unsubscribe` with `{subscriptionId}` stops one, answered `ok` with the id.

use std::collections::HashMap;
use std::marker::PhantomData;

use async_graphql::parser::types::OperationType;
use async_graphql::Executor;
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::task::AbortHandle;

use super::{guard, GraphQL};
use crate::channel::{Channel, ChannelHandle, ChannelSocket, Payload, Reply};

/// The channel of `__absinthe__:control`: GraphQL over a Fawkes socket, in Absinthe's
/// protocol, for `@absinthe/socket` and the Absinthe clients of other languages. Route it
/// in a socket's channels with the [`GraphQL`] it serves as state.
///
/// Resolvers see the socket's assigns (what its `connect` put) and the endpoint's pubsub,
/// through [`ContextExt`](super::ContextExt). A channel runs
/// [`GraphQL::max_operations`](super::GraphQL::max_operations) subscriptions at once; they
/// stop with it.
///
/// # Examples
///
/// ```
/// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
/// use fawkes::graphql::{AbsintheChannel, GraphQL};
/// use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
///
/// struct Query;
///
/// #[Object]
/// impl Query {
///     async fn hello(&self) -> &str {
///         "world"
///     }
/// }
///
/// type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;
///
/// struct UserSocket {
///     graphql: GraphQL<AppSchema>,
/// }
///
/// impl Socket for UserSocket {
///     async fn connect(
///         &self,
///         _params: &serde_json::Map<String, serde_json::Value>,
///         _info: &ConnectInfo,
///     ) -> Result<fawkes::Assigns, Refused> {
///         Ok(fawkes::Assigns::new())
///     }
///
///     fn channels(&self) -> Channels {
///         Channels::new().channel_with::<AbsintheChannel<AppSchema>, _>(
///             "__absinthe__:control",
///             self.graphql.clone(),
///         )
///     }
/// }
/// # let _ = UserSocket {
/// #     graphql: GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription)),
/// # };
/// ```
pub struct AbsintheChannel<E> {
    /// The running subscriptions' tasks, and the bytes their requests keep.
    subscriptions: HashMap<String, (AbortHandle, usize)>,
    /// The bytes the running subscriptions' requests keep together.
    held: usize,
    schema: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for AbsintheChannel<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbsintheChannel").field("subscriptions", &self.subscriptions.len()).finish()
    }
}

impl<E> Drop for AbsintheChannel<E> {
    fn drop(&mut self) {
        for (task, _) in self.subscriptions.values() {
            task.abort();
        }
    }
}

impl<E> AbsintheChannel<E> {
    /// Stops the subscription `id` (aborting its task); whether it ran.
    fn stop(&mut self, id: &str) -> bool {
        let Some((task, bytes)) = self.subscriptions.remove(id) else { return false };
        self.held -= bytes;
        task.abort();
        true
    }
}

/// A result of one of an [`AbsintheChannel`]'s subscriptions, on its way to the client, or
/// the end of the subscription.
#[derive(Debug)]
pub struct SubscriptionEvent {
    id: String,
    response: Option<async_graphql::Response>,
}

/// `{errors: [{message}]}`: a refusal in GraphQL's shape.
fn refusal(message: &str) -> Reply {
    Reply::error(json!({ "errors": [{ "message": message }] }))
}

/// The `doc` payload as a GraphQL request.
fn request_of(payload: &Payload) -> Result<async_graphql::Request, Reply> {
    let Some(fields) = payload.as_json().and_then(Value::as_object) else {
        return Err(refusal("a doc is an object with a query"));
    };
    let Some(query) = fields.get("query").and_then(Value::as_str) else {
        return Err(refusal("a doc needs a query"));
    };
    let mut request = async_graphql::Request::new(query);
    match fields.get("variables") {
        None | Some(Value::Null) => {}
        Some(variables @ Value::Object(_)) => {
            request.variables = async_graphql::Variables::from_json(variables.clone());
        }
        // Absinthe's own words for it.
        Some(_) => return Err(Reply::error(json!({ "error": "Could not parse variables" }))),
    }
    request.operation_name = fields.get("operationName").and_then(Value::as_str).map(str::to_owned);
    Ok(request)
}

impl<E: Executor> AbsintheChannel<E> {
    async fn doc(&mut self, payload: &Payload, socket: &mut ChannelSocket<GraphQL<E>>) -> Reply {
        let mut request = match request_of(payload) {
            Ok(request) => request,
            Err(reply) => return reply,
        };
        let admitted = match guard::admit(&mut request) {
            Ok(admitted) => admitted,
            Err(message) => return refusal(&message),
        };
        let kind = admitted.kind;
        let request = request.data(socket.assigns().clone()).data(socket.pubsub().clone());
        let graphql = socket.state().clone();
        if kind != Some(OperationType::Subscription) {
            let response = graphql.executor.execute(request).await;
            // As `absinthe_phoenix` answers: a document that ran is `ok`, with its data and
            // errors (a failed field's error is at its path); one refused before it ran is
            // `error`, with the errors alone.
            let limit = graphql.config.max_response_bytes;
            return if super::refused(&response) {
                Reply::error(json!({ "errors": response.errors }))
            } else if !super::fits(&response, limit) {
                refusal(&super::too_large(limit))
            } else {
                Reply::ok(serde_json::to_value(&response).unwrap_or(Value::Null))
            };
        }
        // Finished subscriptions leave their slot when their end is handled; a channel whose
        // subscriptions end at once must not fill up meanwhile.
        let max = graphql.config.max_operations;
        if self.subscriptions.len() >= max {
            return refusal(&format!("{max} subscriptions at once at most"));
        }
        let bytes = super::request_bytes(&request, admitted.selections);
        let place = match graphql.run_operation(bytes, self.held, socket.client_ip()) {
            Ok(place) => place,
            Err(message) => return refusal(&message),
        };
        let mut stream = graphql.executor.execute_stream(request, None);
        // A document refused (invalid, or its arguments, or its resolver failing to set the
        // stream up) answers at once with errors and no data, before any event: the doc is
        // then refused rather than subscribed, as Absinthe refuses a subscription whose
        // `config` fails.
        let first = match stream.next().now_or_never() {
            Some(Some(response))
                if response.data == async_graphql::Value::Null && response.is_err() =>
            {
                return Reply::error(json!({ "errors": response.errors }));
            }
            Some(None) => return refusal("the subscription ended before it began"),
            Some(Some(response)) => Some(response),
            None => None,
        };
        let id = format!("__absinthe__:doc:{:032x}", rand::random::<u128>());
        let handle: ChannelHandle<SubscriptionEvent> = socket.handle();
        let task = tokio::spawn({
            let id = id.clone();
            async move {
                let _place = place;
                let events = futures_util::stream::iter(first).chain(stream);
                futures_util::pin_mut!(events);
                while let Some(response) = events.next().await {
                    let event = SubscriptionEvent { id: id.clone(), response: Some(response) };
                    if handle.send(event).is_err() {
                        return;
                    }
                }
                let _ = handle.send(SubscriptionEvent { id, response: None });
            }
        });
        self.subscriptions.insert(id.clone(), (task.abort_handle(), bytes));
        self.held += bytes;
        Reply::ok(json!({ "subscriptionId": id }))
    }
}

/// A `subscription:data` payload: `{result, subscriptionId}`.
#[derive(serde::Serialize)]
struct SubscriptionData<'a> {
    result: &'a async_graphql::Response,
    #[serde(rename = "subscriptionId")]
    subscription_id: &'a str,
}

/// The bytes of a `subscription:data` payload besides its result and its id (a JSON string):
/// `{"result":` and `,"subscriptionId":` and `}`.
const DATA_OVERHEAD: usize = 10 + 18 + 1;

impl<E: Executor> Channel<GraphQL<E>> for AbsintheChannel<E> {
    type Info = SubscriptionEvent;

    async fn join(
        _topic: &str,
        _payload: Payload,
        _socket: &mut ChannelSocket<GraphQL<E>>,
    ) -> Result<(Self, Value), Value> {
        Ok((Self { subscriptions: HashMap::new(), held: 0, schema: PhantomData }, json!({})))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket<GraphQL<E>>,
    ) -> Reply {
        match event {
            "doc" => self.doc(&payload, socket).await,
            "unsubscribe" => {
                let id = payload
                    .as_json()
                    .and_then(|p| p.get("subscriptionId"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if self.stop(&id) {
                    Reply::ok(json!({ "subscriptionId": id }))
                } else {
                    refusal("no such subscription")
                }
            }
            _ => Reply::error(json!({ "reason": "unknown event" })),
        }
    }

    async fn handle_info(
        &mut self,
        event: SubscriptionEvent,
        socket: &mut ChannelSocket<GraphQL<E>>,
    ) {
        // Events of a subscription stopped meanwhile are dropped.
        if !self.subscriptions.contains_key(&event.id) {
            return;
        }
        match event.response {
            Some(result) => {
                let limit = socket.state().config.max_response_bytes;
                // Serialized once, straight into the frame's payload.
                let data = SubscriptionData { result: &result, subscription_id: &event.id };
                let overhead = DATA_OVERHEAD + super::json_string_len(&event.id);
                let payload = match super::json_within(&data, limit.saturating_add(overhead)) {
                    Some(bytes) => String::from_utf8(bytes).unwrap_or_default(),
                    None => {
                        let result = json!({
                            "data": null,
                            "errors": [{ "message": super::too_large(limit) }],
                        });
                        json!({ "result": result, "subscriptionId": event.id }).to_string()
                    }
                };
                let vsn = socket.vsn();
                let frame = crate::serializer::encode_push_json(
                    vsn,
                    None,
                    &event.id,
                    "subscription:data",
                    &payload,
                );
                socket.send_frame(frame);
            }
            None => {
                self.stop(&event.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit on a `subscription:data` payload is the result's plus exactly what wraps it.
    #[test]
    fn a_data_payload_is_its_result_and_the_overhead() {
        let result = async_graphql::Response::new(async_graphql::Value::from("hi"));
        for id in ["__absinthe__:doc:00ff", "a\"b"] {
            let data = SubscriptionData { result: &result, subscription_id: id };
            let whole = crate::serializer::json_len(&data, usize::MAX).unwrap();
            let alone = crate::serializer::json_len(&result, usize::MAX).unwrap();
            assert_eq!(whole, alone + DATA_OVERHEAD + super::super::json_string_len(id), "{id}");
        }
    }
}
