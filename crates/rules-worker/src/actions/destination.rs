//! Which webhook destinations may be called: only globally routable addresses,
//! unless `webhook.allow_private` says otherwise.
//!
//! Host names are checked on the addresses the resolver returns, and reqwest connects
//! to exactly those (no second lookup), so DNS rebinding cannot slip a private
//! address in. IP-literal URLs never reach the resolver and are checked apart.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

pub use rules_core::address::{check_literal, is_global};

/// Why the resolver gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// The name has no address at all (possibly a passing DNS failure: retried).
    #[error("{host} does not resolve")]
    Unresolved { host: String },
    /// Every address is private, loopback, link-local, ...: refused, never retried.
    #[error("destination not allowed: {host} resolves only to non-global addresses")]
    NotAllowed { host: String },
}

/// A resolver that drops non-global addresses (unless allowed).
pub struct GlobalOnlyResolver {
    pub allow_private: bool,
}

impl Resolve for GlobalOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_global(a.ip()))
                .collect();
            if allowed.is_empty() {
                let reason = if found.is_empty() {
                    Unreachable::Unresolved { host }
                } else {
                    Unreachable::NotAllowed { host }
                };
                return Err(Box::new(reason) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        let strict = GlobalOnlyResolver {
            allow_private: false,
        };
        let err = strict
            .resolve("localhost".parse().expect("name"))
            .await
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("not allowed")));
        let lenient = GlobalOnlyResolver {
            allow_private: true,
        };
        assert!(lenient
            .resolve("localhost".parse().expect("name"))
            .await
            .is_ok());
    }
}
