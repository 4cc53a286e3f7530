//! Which webhook destinations may be called: only globally routable addresses,
//! unless `webhook.allow_private` says otherwise. Pure, so the API refuses at save a
//! URL whose IP literal can never be called, and the worker checks every address
//! its resolver returns with the same rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{ActionKind, RuleSpec};
use crate::problems::FieldError;

/// Whether an address is on the public internet.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0 // 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (embeds an IPv4 address)
        || s[0] == 0x2002 // 6to4 2002::/16 (embeds an IPv4 address)
        || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo 2001::/32 (reaches IPv4 hosts)
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, private)
        || (s[0..6] == [0, 0, 0, 0, 0, 0])) // IPv4-compatible (deprecated)
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_literal(url: &url::Url, allow_private: bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allow_private || is_global(ip) {
        Ok(())
    } else {
        Err(format!(
            "destination not allowed: {ip} is not a global address"
        ))
    }
}

/// The destination a URL calls, as breakers, rate limits and lanes name it:
/// `host:port`.
pub fn destination_of(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// The destinations `spec`'s webhook actions call, each once.
pub fn destinations(spec: &RuleSpec) -> Vec<std::sync::Arc<str>> {
    let mut hosts: Vec<std::sync::Arc<str>> = Vec::new();
    for action in &spec.actions {
        if let ActionKind::Webhook(w) = &action.kind {
            if let Ok(url) = url::Url::parse(&w.url) {
                let host = destination_of(&url);
                if !hosts.iter().any(|h| **h == *host) {
                    hosts.push(std::sync::Arc::from(host));
                }
            }
        }
    }
    hosts
}

/// Every webhook action of `spec` whose URL is an IP literal that may not be
/// called, with its path (host names are checked when they are resolved).
pub fn refused_webhooks(spec: &RuleSpec, allow_private: bool) -> Vec<FieldError> {
    spec.actions
        .iter()
        .enumerate()
        .filter_map(|(i, action)| match &action.kind {
            ActionKind::Webhook(w) => {
                let url = url::Url::parse(&w.url).ok()?;
                check_literal(&url, allow_private)
                    .err()
                    .map(|message| FieldError {
                        path: format!("actions[{i}].url"),
                        message,
                    })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges() {
        let cases: &[(&str, bool)] = &[
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700:4700::1111", true),
            ("10.0.0.1", false),
            ("172.16.5.4", false),
            ("192.168.1.1", false),
            ("127.0.0.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.128.0.1", true),
            ("0.1.2.3", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("240.0.0.1", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("::1", false),
            ("::", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::a00:1", false),
            ("2001:db8::1", false),
            ("2002:c0a8:0101::1", false),
            ("2002:0808:0808::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("fec0::1", false),
            ("feff::1", false),
            ("2001:4860:4860::8888", true),
        ];
        for (text, global) in cases {
            let ip: IpAddr = text.parse().expect("address");
            assert_eq!(is_global(ip), *global, "{text}");
        }
    }

    #[test]
    fn literal_urls() {
        let url = |u: &str| url::Url::parse(u).expect("url");
        assert!(check_literal(&url("http://127.0.0.1:8080/x"), false).is_err());
        assert!(check_literal(&url("http://[::1]/x"), false).is_err());
        assert!(check_literal(&url("http://[::ffff:169.254.169.254]/x"), false).is_err());
        assert!(check_literal(&url("http://127.0.0.1:8080/x"), true).is_ok());
        assert!(check_literal(&url("https://8.8.8.8/x"), false).is_ok());
        assert!(check_literal(&url("https://example.com/x"), false).is_ok());
    }
}
