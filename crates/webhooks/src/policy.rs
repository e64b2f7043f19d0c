//! Which addresses roster may call: by default public ones only. Loopback, private, link-local
//! (the cloud metadata address among them), shared, multicast and reserved addresses are
//! refused, whether a URL names them or a name resolves to them, at creation and again at each
//! attempt (a name can be pointed elsewhere later). `--allow-private-webhook-urls` lifts it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use roster_core::webhooks::WebhookUrlPolicy;

#[derive(Clone, Copy, Debug)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

/// Whether `ip` is one roster must not call unless the operator allows private addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24, and benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7, where cloud metadata services also answer) and link-local
        // (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // NAT64 (64:ff9b::/96) reaches IPv4 addresses: judged by the one it embeds.
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            && is_internal_v4(Ipv4Addr::from_bits(ip.to_bits() as u32)))
}

impl AddressPolicy {
    /// Checks `url`'s host: an address as it is, a name by what it resolves to now.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url is not valid: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("url must be http or https".to_owned());
        }
        let host = match parsed.host() {
            Some(h) => h,
            None => return Err("url has no host".to_owned()),
        };
        if self.allow_private {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(ip.into(), port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(ip.into(), port)],
            url::Host::Domain(name) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("url's host `{name}` does not resolve: {e}"))?
                .collect(),
        };
        self.allowed(addrs).map(drop)
    }

    /// For attempts: `url` parsed, if its host is not an internal address (a name is checked
    /// by the client's resolver, on the addresses it connects to, without a second lookup).
    pub fn checked_url(&self, url: &str) -> Result<reqwest::Url, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url is not valid: {e}"))?;
        let ip: std::net::IpAddr = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            _ => return Ok(parsed),
        };
        self.allowed(vec![SocketAddr::new(ip, 0)])?;
        Ok(parsed)
    }

    /// `addrs` if none is internal (or the operator allows them), else why not.
    fn allowed(&self, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip()))
        {
            return Err(format!(
                "url leads to {}, an internal address (loopback, private, link-local or \
                 reserved); roster calls only public addresses unless started with \
                 --allow-private-webhook-urls",
                bad.ip()
            ));
        }
        Ok(addrs)
    }
}

#[async_trait::async_trait]
impl WebhookUrlPolicy for AddressPolicy {
    async fn check(&self, url: &str) -> Result<(), String> {
        self.check_url(url).await
    }
}

/// The HTTP client's resolver: a name is resolved here and refused if it leads anywhere
/// internal, so that the address checked is the address connected to (no second lookup for
/// a name to change in between).
#[derive(Clone, Debug)]
pub(crate) struct CheckingResolver(pub AddressPolicy);

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let addrs = policy.allowed(addrs)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl CheckingResolver {
    pub(crate) fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_told_from_public_ones() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "240.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_url_naming_or_resolving_to_an_internal_address_is_refused_unless_allowed() {
        let strict = AddressPolicy {
            allow_private: false,
        };
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
        ] {
            let refused = strict.check_url(url).await.unwrap_err();
            assert!(refused.contains("internal address"), "{url}: {refused}");
        }
        assert!(strict.check_url("ftp://example.com/").await.is_err());
        let lax = AddressPolicy {
            allow_private: true,
        };
        assert_eq!(lax.check_url("http://127.0.0.1:8080/hook").await, Ok(()));
        // At an attempt, an address in the URL is checked as it stands; a name is left to
        // the resolver.
        assert!(strict.checked_url("http://10.0.0.1/hook").is_err());
        assert!(strict.checked_url("http://hooks.example.com/").is_ok());
        assert!(lax.checked_url("http://10.0.0.1/hook").is_ok());
    }
}
