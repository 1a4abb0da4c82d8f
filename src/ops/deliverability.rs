//! The deliverability report of `preview` and `check`: the message's own checks
//! ([`crate::deliverability`]), and with `--dns` the records a receiver looks up: the
//! DKIM key (compared with the configured private key's public half), SPF on the
//! Return-Path's domain, DMARC on the `From` domain.
//!
//! Only `--dns` opens a network connection, and only to the name server: the system's
//! (`/etc/resolv.conf`), or the one in `NEWSDESK_DNS_SERVER` (`IP:PORT`, read by `cli`),
//! which tests point at a server on 127.0.0.1 and an editor can point at the domain's
//! own server to see a change before caches do.

use crate::config::Config;
use crate::deliverability::{self as judge, Check, Lookup};
use crate::transport::dkim::Signer;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use std::net::SocketAddr;
use std::time::Duration;

/// `--dns`: where to look the records up.
#[derive(Debug, Clone, Default)]
pub struct DnsOptions {
    /// The name server to ask; `None`: the system's.
    pub nameserver: Option<SocketAddr>,
}

/// The report for `eml` (the message exactly as it goes out), signed by `signer` when
/// DKIM is configured; with `dns`, the DNS records too.
pub fn report(config: &Config, eml: &[u8], signer: Option<&Signer>, dns: Option<&DnsOptions>) -> Vec<Check> {
    let return_path = config.email.as_ref().and_then(|e| e.return_path.as_deref());
    let mut checks = judge::message_checks(eml, return_path);
    if let Some(dns) = dns {
        checks.extend(dns_checks(eml, return_path, signer, dns));
    }
    checks
}

/// The names a receiver looks up for this message.
struct Names {
    dkim: Option<String>,
    spf: String,
    /// `_dmarc.` of the From domain, then of its organizational domain when that
    /// differs (RFC 7489 section 6.6.3).
    dmarc: Vec<String>,
}

fn dns_checks(eml: &[u8], return_path: Option<&str>, signer: Option<&Signer>, dns: &DnsOptions) -> Vec<Check> {
    let Some(read) = judge::read(eml) else { return Vec::new() };
    let Some(from) = read.from_domain.clone() else { return Vec::new() };
    let org = judge::organizational_domain(&from);
    let names = Names {
        dkim: signer.map(|s| format!("{}._domainkey.{}", s.selector, s.domain.trim_end_matches('.'))),
        spf: return_path.and_then(judge::address_domain).unwrap_or_else(|| from.clone()),
        dmarc: if org == from {
            vec![format!("_dmarc.{from}")]
        } else {
            vec![format!("_dmarc.{from}"), format!("_dmarc.{org}")]
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return vec![dns_unusable(format!("cannot start the DNS client: {e}"))],
    };
    let server = match dns.nameserver {
        Some(a) => a.to_string(),
        None => "the system's name server".to_string(),
    };
    runtime.block_on(async {
        let resolver = match resolver(dns) {
            Ok(r) => r,
            Err(why) => return vec![dns_unusable(why)],
        };
        let lookup = |name: String| {
            let (resolver, server) = (&resolver, &server);
            async move { txt(resolver, &name, server).await }
        };
        let dkim = async {
            match &names.dkim {
                Some(name) => Some(lookup(name.clone()).await),
                None => None,
            }
        };
        let dmarc = async {
            // The From domain's own record, else its organizational domain's: only a
            // `v=DMARC1` record or a failed lookup ends the search (RFC 7489 6.6.3).
            let mut last = (0, Lookup::NotFound { nxdomain: true });
            for (i, name) in names.dmarc.iter().enumerate() {
                let found = lookup(name.clone()).await;
                let ends = judge::dmarc_lookup_ends(&found);
                last = (i, found);
                if ends {
                    break;
                }
            }
            last
        };
        let (dkim, spf, (dmarc_at, dmarc)) = tokio::join!(dkim, lookup(names.spf.clone()), dmarc);
        let dmarc_name = names.dmarc[dmarc_at].clone();
        let mut out = Vec::new();
        if let (Some(signer), Some(name), Some(lookup)) = (signer, &names.dkim, dkim) {
            out.push(judge::dkim_key_check(name, &lookup, signer.key_type(), &signer.public_key()));
        }
        out.push(judge::spf_check(&names.spf, &spf));
        let ids = judge::Identifiers {
            from: &from,
            dkim: read.dkim.as_ref().map(|s| s.domain.as_str()),
            envelope: &names.spf,
        };
        let mut dmarc_check = judge::dmarc_check(&dmarc_name, &dmarc, dmarc_at > 0, ids);
        if names.dmarc.len() > 1 && !judge::dmarc_lookup_ends(&dmarc) {
            dmarc_check.detail = format!("neither {} nor {}: {}", names.dmarc[0], dmarc_name, dmarc_check.detail);
        }
        out.push(dmarc_check);
        out
    })
}

fn dns_unusable(why: String) -> Check {
    Check {
        name: "dns",
        status: judge::Status::Error,
        detail: why,
        hint: Some("check /etc/resolv.conf, or set NEWSDESK_DNS_SERVER=IP:PORT".into()),
    }
}

/// A resolver asking `dns.nameserver` (UDP, then TCP for long answers), else the
/// system's servers. Short timeouts: a report should not hang for a minute.
fn resolver(dns: &DnsOptions) -> Result<TokioResolver, String> {
    let mut builder = match dns.nameserver {
        Some(addr) => {
            let mut config = ResolverConfig::new();
            config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
            config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        }
        None => TokioResolver::builder_tokio().map_err(|e| format!("cannot read the system's DNS settings: {e}"))?,
    };
    let options = builder.options_mut();
    options.timeout = Duration::from_secs(3);
    options.attempts = 2;
    options.edns0 = true;
    // Names are absolute: no search domains appended.
    options.ndots = 0;
    Ok(builder.build())
}

/// The TXT records at `name`, each one's strings joined; a failure names `server`.
async fn txt(resolver: &TokioResolver, name: &str, server: &str) -> Lookup {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn).await {
        Ok(found) => Lookup::Found(
            found.iter().map(|t| t.txt_data().iter().map(|s| String::from_utf8_lossy(s)).collect::<String>()).collect(),
        ),
        Err(e) => match classify(&e) {
            Lookup::Failed(why) => Lookup::Failed(format!("{why} (asking {server})")),
            answer => answer,
        },
    }
}

/// NXDOMAIN and NODATA are answers ("there is no such record"); anything else
/// (REFUSED, SERVFAIL, a timeout) says nothing about the record.
fn classify(e: &ResolveError) -> Lookup {
    if let Some(proto) = e.proto()
        && let ProtoErrorKind::NoRecordsFound { response_code, .. } = proto.kind()
    {
        return match *response_code {
            ResponseCode::NXDomain => Lookup::NotFound { nxdomain: true },
            ResponseCode::NoError => Lookup::NotFound { nxdomain: false },
            code => Lookup::Failed(format!("the name server answered {code}")),
        };
    }
    let why = e.to_string();
    Lookup::Failed(why.strip_prefix("proto error: ").unwrap_or(&why).to_string())
}
