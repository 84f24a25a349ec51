//! Per-client limits of a transport: how many sockets one client may hold open and how many
//! channels its sockets may run together, so one client cannot take what all share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};

use http::HeaderMap;

use crate::budget::Budget;
use crate::security::TrustedProxies;

/// A client, as limits tell clients apart: an IPv4 address, or the /64 network of an IPv6
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        Self(crate::security::client_ip::client_key(ip))
    }
}

/// The limits and who holds what under them.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    pub(crate) max_sockets: Option<usize>,
    pub(crate) max_channels: Option<usize>,
    pub(crate) proxies: TrustedProxies,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    clients: HashMap<ClientKey, Weak<Client>>,
    /// The map is swept of clients with no socket left when it reaches this size.
    sweep_at: usize,
}

/// One client's sockets and channels against its limits.
#[derive(Debug)]
pub(crate) struct Client {
    sockets: Budget,
    channels: Budget,
}

/// A socket's place among its client's: given back when the socket ends.
#[derive(Debug)]
pub(crate) struct ClientSocket(Arc<Client>);

impl Drop for ClientSocket {
    fn drop(&mut self) {
        self.0.sockets.give_back(1);
    }
}

/// A channel's place among its client's.
#[derive(Debug)]
pub(crate) struct ClientChannel(Arc<Client>);

impl Drop for ClientChannel {
    fn drop(&mut self) {
        self.0.channels.give_back(1);
    }
}

impl ClientSocket {
    /// A place for one more channel of this client; `None` at its limit.
    pub(crate) fn take_channel(&self) -> Option<ClientChannel> {
        self.0.channels.try_take(1).then(|| ClientChannel(self.0.clone()))
    }
}

impl Clients {
    /// At most `max_sockets` sockets a client, told apart through `proxies`.
    #[cfg(feature = "graphql")]
    pub(crate) fn sockets(max_sockets: usize, proxies: TrustedProxies) -> Self {
        Self { max_sockets: Some(max_sockets), proxies, ..Self::default() }
    }

    /// Whether any per-client limit is set.
    fn limited(&self) -> bool {
        self.max_sockets.is_some() || self.max_channels.is_some()
    }

    /// A place for a new socket of the client that sent `headers` from `peer`: `Ok(None)`
    /// when no limit is set, `Err` with the client at its limit of sockets.
    pub(crate) fn admit(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<Option<ClientSocket>, IpAddr> {
        let Some(peer) = peer.filter(|_| self.limited()) else { return Ok(None) };
        let ip = self.proxies.client_ip(peer.ip(), headers);
        let key = ClientKey::of(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let client = match held.clients.get(&key).and_then(Weak::upgrade) {
            Some(client) => client,
            None => {
                let client = Arc::new(Client {
                    sockets: Budget::new(self.max_sockets.unwrap_or(usize::MAX)),
                    channels: Budget::new(self.max_channels.unwrap_or(usize::MAX)),
                });
                held.clients.insert(key, Arc::downgrade(&client));
                if held.clients.len() >= held.sweep_at {
                    held.clients.retain(|_, client| client.strong_count() > 0);
                    held.sweep_at = (held.clients.len() * 2).max(1024);
                }
                client
            }
        };
        drop(held);
        if client.sockets.try_take(1) {
            Ok(Some(ClientSocket(client)))
        } else {
            Err(ip)
        }
    }

    /// How many clients hold sockets (for tests).
    #[cfg(test)]
    pub(crate) fn clients(&self) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.clients.values().filter(|client| client.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 5000))
    }

    #[test]
    fn a_client_holds_its_sockets_and_channels_up_to_its_limits() {
        let clients = Clients { max_sockets: Some(2), max_channels: Some(3), ..Default::default() };
        let none = HeaderMap::new();
        let a1 = clients.admit(peer("1.1.1.1"), &none).unwrap().unwrap();
        let a2 = clients.admit(peer("1.1.1.1"), &none).unwrap().unwrap();
        assert_eq!(
            clients.admit(peer("1.1.1.1"), &none).unwrap_err(),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
        // Another client is counted apart; the addresses of one IPv6 /64 together.
        let _b = clients.admit(peer("2.2.2.2"), &none).unwrap().unwrap();
        let _c1 = clients.admit(peer("2001:db8::1"), &none).unwrap().unwrap();
        let _c2 = clients.admit(peer("2001:db8::ffff:2"), &none).unwrap().unwrap();
        assert!(clients.admit(peer("2001:db8::3"), &none).is_err());
        assert!(clients.admit(peer("2001:db8:0:1::3"), &none).is_ok());
        // Channels count over all the client's sockets.
        let channels: Vec<_> = (0..3)
            .map(|i| if i % 2 == 0 { a1.take_channel() } else { a2.take_channel() })
            .collect();
        assert!(channels.iter().all(Option::is_some));
        assert!(a2.take_channel().is_none());
        drop(channels);
        assert!(a1.take_channel().is_some());
        // A socket that ends gives its place back.
        drop(a2);
        assert!(clients.admit(peer("1.1.1.1"), &none).is_ok());
    }

    #[test]
    fn without_limits_nothing_is_counted() {
        let clients = Clients::default();
        for _ in 0..10 {
            assert!(clients.admit(peer("1.1.1.1"), &HeaderMap::new()).unwrap().is_none());
        }
        assert_eq!(clients.clients(), 0);
    }
}
