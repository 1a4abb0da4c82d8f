//! The deliverability report: the outgoing message read the way a receiving mail
//! server reads it before it picks the inbox or the spam folder.
//!
//! Gmail's and Yahoo's rules for bulk senders (since 2024) ask for a DKIM signature
//! whose `d=` aligns with `From` (DMARC, RFC 7489 section 3.1), an envelope sender
//! (the Return-Path) that does too for SPF, one-click unsubscribe (RFC 8058) with
//! both `List-Unsubscribe` headers covered by the signature, and a visible
//! unsubscribe link; Gmail also clips an HTML part over 102 KB, hiding the footer
//! with that link. Each rule is one [`Check`] here, computed from the exact bytes that
//! go out, so the report cannot drift from what the code builds.
//!
//! Pure: message bytes and settings in, checks out; it imports nothing of the crate. The DNS half
//! (`--dns`) looks the records up in `ops::deliverability` and judges them with the
//! functions at the end of this file, so the judging is testable without a network.

use base64ct::{Base64, Encoding};
use html5ever::tendril::TendrilSink;
use mail_parser::{MessageParser, MimeHeaders};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use serde::Serialize;

/// Gmail shows "[Message clipped]" past this many bytes of HTML (102 KB as Gmail's
/// help counts them, 102,400 bytes), and hides the rest behind a link.
pub const GMAIL_CLIP_BYTES: usize = 102_400;

/// How a check came out. Errors are what makes receivers reject or fail the mail
/// (a DKIM key that does not match); warnings what makes it likelier to land in spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A short stable name for scripts (`dkim-alignment`, `spf`, ...).
    pub name: &'static str,
    pub status: Status,
    /// What was found, in a sentence.
    pub detail: String,
    /// What to change, when something should.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check { name, status: Status::Ok, detail: detail.into(), hint: None }
    }
    fn warning(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { name, status: Status::Warning, detail: detail.into(), hint: Some(hint.into()) }
    }
    fn error(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { name, status: Status::Error, detail: detail.into(), hint: Some(hint.into()) }
    }
}

/// How many checks of `checks` came out as `status`.
pub fn count(checks: &[Check], status: Status) -> usize {
    checks.iter().filter(|c| c.status == status).count()
}

/// The headers the signature must cover: a receiver ignores an unsigned
/// `List-Unsubscribe` for one-click (RFC 8058 section 4), and an unsigned `From` or
/// `Subject` could be replaced on the way.
pub const MUST_SIGN: [&str; 4] = ["From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"];

/// The organizational domain of `domain` (RFC 7489 section 3.2): the registrable
/// domain by the Public Suffix List (`lwkd.example.org` → `example.org`,
/// `news.example.co.uk` → `example.co.uk`), or the name itself when it has none.
pub fn organizational_domain(domain: &str) -> String {
    let d = normalize_domain(domain);
    psl::domain_str(&d).map(str::to_string).unwrap_or(d)
}

/// Relaxed alignment (RFC 7489 section 3.1): the same organizational domain.
pub fn aligned(a: &str, b: &str) -> bool {
    organizational_domain(a) == organizational_domain(b)
}

fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain of an address (`bounces+{token}@lwkd.example.org` → `lwkd.example.org`).
pub fn address_domain(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address.rsplit_once('@').map(|(_, d)| normalize_domain(d)).filter(|d| !d.is_empty())
}

/// What the report reads from a message.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub from_domain: Option<String>,
    /// The tags of the first `DKIM-Signature` header.
    pub dkim: Option<Signature>,
}

/// A `DKIM-Signature` header's tags that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub algorithm: String,
    pub domain: String,
    pub selector: String,
    /// `h=`, lowercased, in order, with repeats.
    pub headers: Vec<String>,
}

/// `tag=value` pairs of a DKIM, DMARC or DKIM key record (RFC 6376 section 3.2),
/// whitespace inside values removed (folding and base64 may contain it).
pub fn tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.chars().filter(|c| !c.is_whitespace()).collect()))
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The `From` domain and the DKIM signature of `eml`; `None` when it is not a message.
pub fn read(eml: &[u8]) -> Option<Read> {
    let message = MessageParser::default().parse(eml)?;
    let from_domain = message.from().and_then(|a| a.first()).and_then(|a| a.address()).and_then(address_domain);
    let dkim =
        message.headers_raw().find(|(name, _)| name.eq_ignore_ascii_case("DKIM-Signature")).and_then(|(_, value)| {
            let t = tags(value);
            Some(Signature {
                algorithm: tag(&t, "a").unwrap_or_default().to_string(),
                domain: normalize_domain(tag(&t, "d")?),
                selector: tag(&t, "s")?.to_string(),
                headers: tag(&t, "h")
                    .unwrap_or_default()
                    .split(':')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect(),
            })
        });
    Some(Read { from_domain, dkim })
}

/// Every offline check of `eml`, the message exactly as it goes out. `return_path` is
/// `[email] return_path` (the envelope sender of subscriber mail, `{token}` in it);
/// without one the envelope sender is the `From` address.
pub fn message_checks(eml: &[u8], return_path: Option<&str>) -> Vec<Check> {
    let Some(message) = MessageParser::default().parse(eml) else {
        return vec![Check::error("message", "the message cannot be read as mail", "report this as a newsdesk bug")];
    };
    let Some(read) = read(eml) else { return Vec::new() };
    let mut out = Vec::new();
    let Some(from) = read.from_domain.clone() else {
        out.push(Check::error("from", "the message has no `From` address", "set `[email] from`"));
        return out;
    };
    let org = organizational_domain(&from);
    out.extend(dkim_checks(read.dkim.as_ref(), &from, &org));
    out.push(return_path_check(return_path, &from, &org));
    let header = |name: &str| {
        message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    out.push(match header("List-Id") {
        Some(id) => Check::ok("list-id", format!("`List-Id: {id}` names the list (RFC 2919)")),
        None => Check::warning(
            "list-id",
            "the message has no `List-Id`: receivers and filters cannot tell it is list mail",
            "set `[email] list_id = \"Name <list.example.org>\"`",
        ),
    });
    let targets = header("List-Unsubscribe").map(|v| unsubscribe_targets(&v)).unwrap_or_default();
    let one_click =
        header("List-Unsubscribe-Post").is_some_and(|v| v.eq_ignore_ascii_case("List-Unsubscribe=One-Click"));
    let https = targets.iter().any(|t| t.starts_with("https://"));
    out.push(if targets.is_empty() {
        Check::warning(
            "list-unsubscribe",
            "the message has no `List-Unsubscribe`: Gmail and Yahoo require one-click unsubscribe of bulk senders",
            "set `[email] unsubscribe_url` to an https page (and `unsubscribe_mailto`)",
        )
    } else if https && one_click {
        Check::ok("list-unsubscribe", format!("one-click unsubscribe (RFC 8058): {}", targets.join(", ")))
    } else {
        Check::warning(
            "list-unsubscribe",
            format!(
                "`List-Unsubscribe: {}` has no one-click https link: Gmail and Yahoo require one for bulk senders",
                targets.join(", ")
            ),
            "set `[email] unsubscribe_url` to an https page that unsubscribes on POST",
        )
    });
    let part = |html: bool| {
        message
            .parts
            .iter()
            .find(|p| {
                p.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(if html { "html" } else { "plain" }))
                })
            })
            .and_then(|p| p.text_contents())
    };
    let (html, text) = (part(true), part(false));
    out.push(unsubscribe_in_html(html, &targets));
    out.push(unsubscribe_in_text(text, &targets));
    out.push(html_size(html));
    out
}

fn dkim_checks(sig: Option<&Signature>, from: &str, org: &str) -> Vec<Check> {
    let Some(sig) = sig else {
        return vec![Check::warning(
            "dkim",
            "DKIM is off: the message is not signed, and Gmail and Yahoo require DKIM of bulk senders",
            "make a key, publish it in DNS at SELECTOR._domainkey.DOMAIN and set `[email.dkim]`",
        )];
    };
    let mut out =
        vec![Check::ok("dkim", format!("signed with {}, d={} s={}", sig.algorithm, sig.domain, sig.selector))];
    out.push(if aligned(&sig.domain, from) {
        Check::ok(
            "dkim-alignment",
            format!("d={} aligns with From's {from} (relaxed: both in {org})", sig.domain),
        )
    } else {
        Check::warning(
            "dkim-alignment",
            format!(
                "d={} is not in From's organization {org}: DMARC ignores the signature, so the mail fails DMARC unless SPF aligns",
                sig.domain
            ),
            format!("sign as {org} or a subdomain of it: set `[email.dkim] domain` and publish the key there"),
        )
    });
    let missing: Vec<&str> =
        MUST_SIGN.into_iter().filter(|h| !sig.headers.iter().any(|s| s.eq_ignore_ascii_case(h))).collect();
    out.push(if missing.is_empty() {
        Check::ok("dkim-headers", format!("the signature covers {}", MUST_SIGN.join(", ")))
    } else {
        Check::warning(
            "dkim-headers",
            format!(
                "the signature does not cover {}: receivers ignore an unsigned one-click unsubscribe, and unsigned headers can be changed on the way",
                missing.join(", ")
            ),
            "sign with newsdesk's `[email.dkim]` (it covers all of them), or add them to your signer's header list",
        )
    });
    out
}

fn return_path_check(return_path: Option<&str>, from: &str, org: &str) -> Check {
    let Some(rp) = return_path else {
        return Check::ok(
            "return-path",
            format!("the envelope sender (Return-Path) is the From address, on {from}: aligned for SPF"),
        );
    };
    let Some(domain) = address_domain(rp) else {
        return Check::error(
            "return-path",
            format!("`[email] return_path = \"{rp}\"` has no domain"),
            "write a full address",
        );
    };
    if aligned(&domain, from) {
        Check::ok(
            "return-path",
            format!(
                "subscriber mail goes out with Return-Path {rp}: {domain} aligns with From's {from} for DMARC (relaxed: both in {org}); list and test sends use it without the token"
            ),
        )
    } else {
        Check::warning(
            "return-path",
            format!(
                "the Return-Path {rp} of subscriber mail is on {domain}, not in From's organization {org}: SPF cannot align, so DMARC rests on DKIM alone"
            ),
            format!("put `[email] return_path` on {org} or a subdomain of it, e.g. `bounces+{{token}}@{from}`"),
        )
    }
}

/// The `<...>` targets of a `List-Unsubscribe` value.
fn unsubscribe_targets(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|t| t.trim().strip_prefix('<')?.strip_suffix('>').map(str::to_string))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The address of a `mailto:` target (`mailto:a@b.org?subject=x` → `a@b.org`).
fn mailto_address(target: &str) -> Option<&str> {
    target.strip_prefix("mailto:").map(|m| m.split('?').next().unwrap_or_default()).filter(|a| !a.is_empty())
}

fn no_targets(name: &'static str) -> Check {
    Check::warning(
        name,
        "there is no unsubscribe link to look for: the message has no `List-Unsubscribe`",
        "set `[email] unsubscribe_url` (and `unsubscribe_mailto`)",
    )
}

/// A link in the HTML part to one of `targets` that a reader can see: with text, and
/// not inside anything styled `display:none` or `visibility:hidden`.
fn unsubscribe_in_html(html: Option<&str>, targets: &[String]) -> Check {
    const NAME: &str = "unsubscribe-html";
    let Some(html) = html else {
        return Check::warning(NAME, "the message has no HTML part", "keep `digest.html` in the templates");
    };
    if targets.is_empty() {
        return no_targets(NAME);
    }
    let links = visible_links(html);
    match links.iter().find(|(href, _)| targets.iter().any(|t| t == href)) {
        Some((href, text)) => Check::ok(NAME, format!("the HTML part links \"{text}\" to {href}")),
        None => Check::warning(
            NAME,
            format!("the HTML part has no visible link to {}", targets.join(" or ")),
            "keep the footer's `<a href=\"{{ unsubscribe_page }}\">Unsubscribe</a>` (or `{{ unsubscribe_mailto }}`) in digest.html",
        ),
    }
}

/// The text part names one of `targets` (the URL itself, or the mailto's address).
fn unsubscribe_in_text(text: Option<&str>, targets: &[String]) -> Check {
    const NAME: &str = "unsubscribe-text";
    let Some(text) = text else {
        return Check::warning(NAME, "the message has no text part", "keep `digest.txt` in the templates");
    };
    if targets.is_empty() {
        return no_targets(NAME);
    }
    let shown = targets.iter().map(|t| mailto_address(t).unwrap_or(t)).find(|t| text.contains(t));
    match shown {
        Some(t) => Check::ok(NAME, format!("the text part shows {t}")),
        None => Check::warning(
            NAME,
            format!(
                "the text part shows no unsubscribe link ({}): a reader of plain text cannot leave",
                targets.iter().map(|t| mailto_address(t).unwrap_or(t)).collect::<Vec<_>>().join(" or ")
            ),
            "keep the footer's `Unsubscribe: {{ unsubscribe_page }}` (or `{{ unsubscribe_address }}`) in digest.txt",
        ),
    }
}

fn html_size(html: Option<&str>) -> Check {
    let bytes = html.map_or(0, str::len);
    let (size, clip) = (thousands(bytes), thousands(GMAIL_CLIP_BYTES));
    if bytes > GMAIL_CLIP_BYTES {
        Check::warning(
            "html-size",
            format!(
                "the HTML part is {size} bytes, over Gmail's clip at 102 KB ({clip} bytes): Gmail hides the rest, the unsubscribe link included"
            ),
            "shorten the issue, or trim the template's CSS and markup",
        )
    } else {
        Check::ok(
            "html-size",
            format!(
                "the HTML part is {size} bytes, {}% of Gmail's clip at 102 KB ({clip} bytes)",
                bytes * 100 / GMAIL_CLIP_BYTES
            ),
        )
    }
}

/// `104448` → `104,448`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `(href, text)` of every `<a href>` a reader can see in `html`.
fn visible_links(html: &str) -> Vec<(String, String)> {
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(html);
    let mut out = Vec::new();
    walk(&dom.document, false, &mut out);
    out
}

fn walk(node: &Handle, hidden: bool, out: &mut Vec<(String, String)>) {
    let mut hidden = hidden;
    if let NodeData::Element { name, attrs, .. } = &node.data {
        if matches!(&*name.local, "head" | "style" | "script" | "title") {
            return;
        }
        hidden |= element_hidden(&attrs.borrow());
        let href = attrs.borrow().iter().find(|a| &*a.name.local == "href").map(|a| a.value.trim().to_string());
        if &*name.local == "a"
            && !hidden
            && let Some(href) = href
        {
            let mut text = String::new();
            text_of(node, &mut text);
            // Zero-width characters (a `&zwnj;` link) show nothing.
            let text = text
                .chars()
                .filter(|c| !matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{034F}' | '\u{00AD}'))
                .collect::<String>();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if !text.is_empty() {
                out.push((href, text));
            }
        }
    }
    for child in node.children.borrow().iter() {
        walk(child, hidden, out);
    }
}

/// The text a reader sees inside `node`: hidden descendants left out.
fn text_of(node: &Handle, out: &mut String) {
    match &node.data {
        NodeData::Text { contents } => out.push_str(&contents.borrow()),
        NodeData::Element { name, attrs, .. }
            if matches!(&*name.local, "style" | "script") || element_hidden(&attrs.borrow()) => {}
        _ => {
            for child in node.children.borrow().iter() {
                text_of(child, out);
            }
        }
    }
}

/// Whether an element's attributes hide it: `hidden`, or an inline style that does.
fn element_hidden(attrs: &[html5ever::Attribute]) -> bool {
    attrs.iter().any(|a| match &*a.name.local {
        "hidden" => true,
        "style" => hides(&a.value),
        _ => false,
    })
}

/// Whether an inline style hides its element: the ways mail templates hide a
/// preheader (`display:none`, `visibility:hidden`, `opacity:0`, `font-size:0`,
/// `mso-hide:all`, a zero `max-height` or `height` with `overflow:hidden`), with or
/// without `!important`.
fn hides(style: &str) -> bool {
    let declarations: Vec<(String, String)> = style
        .split(';')
        .filter_map(|d| {
            let (property, value) = d.split_once(':')?;
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
            let value = value.strip_suffix("!important").unwrap_or(&value).to_string();
            Some((property.trim().to_ascii_lowercase(), value))
        })
        .collect();
    let has = |property: &str, test: &dyn Fn(&str) -> bool| declarations.iter().any(|(p, v)| p == property && test(v));
    // `0`, `0px`, `0.0em`, `0%`: a length or number that is zero.
    let zero = |v: &str| {
        let number = v.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
        !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n == 0.0)
    };
    has("display", &|v| v == "none")
        || has("visibility", &|v| v == "hidden" || v == "collapse")
        || has("opacity", &zero)
        || has("font-size", &zero)
        || has("mso-hide", &|v| v == "all")
        || ((has("max-height", &zero) || has("height", &zero)) && has("overflow", &|v| v == "hidden"))
}

// ----- DNS records (`--dns`), judged here once `ops::deliverability` looked them up -----

/// The answer to one TXT lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The TXT records, each one's strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2).
    Found(Vec<String>),
    /// No such name (NXDOMAIN) or no TXT record at it; `true` for NXDOMAIN.
    NotFound { nxdomain: bool },
    /// The lookup itself failed (a timeout, SERVFAIL, REFUSED, no server): why.
    Failed(String),
}

fn not_found(nxdomain: bool) -> &'static str {
    if nxdomain { "the name does not exist (NXDOMAIN)" } else { "the name has no TXT record" }
}

fn failed(name: &'static str, record: &str, why: &str) -> Check {
    Check::error(
        name,
        format!("cannot look up the TXT record {record}: {why}"),
        "check that the name server answers (`dig TXT` the name), then run `--dns` again",
    )
}

/// The DKIM key record at `record` (`s1._domainkey.example.org`) against the signer's
/// public key: `key_type` `rsa` (`public_key` the DER SubjectPublicKeyInfo, RFC 6376
/// 3.6.1) or `ed25519` (the raw 32 bytes, RFC 8463 section 4).
pub fn dkim_key_check(record: &str, lookup: &Lookup, key_type: &str, public_key: &[u8]) -> Check {
    const NAME: &str = "dkim-dns";
    let ours = Base64::encode_string(public_key);
    let publish = format!("publish `v=DKIM1; k={key_type}; p={ours}` as the TXT record {record}");
    let records = match lookup {
        Lookup::Found(r) => r,
        Lookup::NotFound { nxdomain } => {
            return Check::error(
                NAME,
                format!("no DKIM key at {record}: {}, so every signature fails", not_found(*nxdomain)),
                publish,
            );
        }
        Lookup::Failed(why) => return failed(NAME, record, why),
    };
    let keys: Vec<Vec<(String, String)>> =
        records.iter().map(|r| tags(r)).filter(|t| tag(t, "p").is_some() || tag(t, "v") == Some("DKIM1")).collect();
    let Some(t) = keys.first() else {
        return Check::error(NAME, format!("the TXT record at {record} is not a DKIM key (no `p=`)"), publish);
    };
    if keys.len() > 1 {
        return Check::error(
            NAME,
            format!("{} DKIM key records at {record}: receivers may pick either", keys.len()),
            format!("keep one: {publish}"),
        );
    }
    let k = tag(t, "k").unwrap_or("rsa");
    if !k.eq_ignore_ascii_case(key_type) {
        return Check::error(
            NAME,
            format!("the key at {record} is `k={k}`, but `[email.dkim] key_file` is an {key_type} key"),
            publish,
        );
    }
    let p = tag(t, "p").unwrap_or_default();
    if p.is_empty() {
        return Check::error(NAME, format!("the key at {record} is revoked (`p=` is empty)"), publish);
    }
    let published = match Base64::decode_vec(p) {
        Ok(published) => published,
        Err(_) => return Check::error(NAME, format!("the `p=` of the key at {record} is not base64"), publish),
    };
    // RFC 6376 names the RSAPublicKey for `p=`; most publish the SubjectPublicKeyInfo
    // around it (`openssl rsa -pubout`), which ends with the same bytes. Verifiers
    // take either.
    let same_key =
        published == public_key || (key_type == "rsa" && published.len() >= 64 && public_key.ends_with(&published));
    if !same_key {
        return Check::error(
            NAME,
            format!(
                "the key published at {record} is a different public key from that of `[email.dkim] key_file`: every signature fails"
            ),
            format!("{publish}, or point `key_file` at the private key of the published one"),
        );
    }
    // `s=`: the services the key is for (RFC 6376 3.6.1); `email` or `*`.
    if let Some(services) = tag(t, "s")
        && !services.split(':').any(|s| s == "*" || s.eq_ignore_ascii_case("email"))
    {
        return Check::error(
            NAME,
            format!("the key at {record} is for `s={services}`, not for email: receivers will not use it"),
            publish,
        );
    }
    // `h=`: the hash algorithms the key may be used with; newsdesk signs with SHA-256.
    if let Some(hashes) = tag(t, "h")
        && !hashes.split(':').any(|h| h.eq_ignore_ascii_case("sha256"))
    {
        return Check::error(
            NAME,
            format!("the key at {record} allows only `h={hashes}`, and the signatures use SHA-256: every one fails"),
            publish,
        );
    }
    // `t=y`: testing; receivers treat the mail as unsigned when the signature fails,
    // and some as unsigned always.
    if tag(t, "t").is_some_and(|flags| flags.split(':').any(|f| f.eq_ignore_ascii_case("y"))) {
        return Check::warning(
            NAME,
            format!(
                "the {key_type} key at {record} matches `[email.dkim] key_file`, but `t=y` marks it as a test: receivers may treat the mail as unsigned"
            ),
            "remove `t=y` from the record once signatures verify",
        );
    }
    Check::ok(NAME, format!("the {key_type} key at {record} matches `[email.dkim] key_file`"))
}

/// The SPF record of `domain` (the Return-Path's): exactly one `v=spf1` TXT record
/// (RFC 7208 4.5: two are a permanent error).
pub fn spf_check(domain: &str, lookup: &Lookup) -> Check {
    const NAME: &str = "spf";
    let records = match lookup {
        Lookup::Found(r) => r,
        Lookup::NotFound { nxdomain } => {
            return Check::warning(
                NAME,
                format!("no SPF record at {domain}: {}", not_found(*nxdomain)),
                format!("publish a TXT record `v=spf1 ... -all` at {domain} naming the servers that send its mail"),
            );
        }
        Lookup::Failed(why) => return failed(NAME, domain, why),
    };
    // A record is the one that starts with `v=spf1` exactly (RFC 7208 4.5): one with
    // a space before it is not.
    let spf: Vec<&String> = records
        .iter()
        .filter(|r| {
            let r = r.to_ascii_lowercase();
            r == "v=spf1" || r.starts_with("v=spf1 ")
        })
        .collect();
    match spf.as_slice() {
        [] => Check::warning(
            NAME,
            format!("no SPF record at {domain}: its TXT records have no `v=spf1`"),
            format!("publish a TXT record `v=spf1 ... -all` at {domain} naming the servers that send its mail"),
        ),
        [one] => match one.split_whitespace().find(|m| m.eq_ignore_ascii_case("+all") || m.eq_ignore_ascii_case("all"))
        {
            Some(all) => Check::warning(
                NAME,
                format!("the SPF record at {domain} has `{all}`: it passes every server on the internet"),
                "end it in `-all` or `~all`",
            ),
            None => Check::ok(NAME, format!("SPF at {domain}: `{one}`")),
        },
        many => Check::error(
            NAME,
            format!("{} SPF records at {domain}: receivers treat that as a permanent error (RFC 7208 4.5)", many.len()),
            "merge them into one `v=spf1` record",
        ),
    }
}

/// The DMARC records among a lookup's TXT records (`v=DMARC1` first), as tags.
fn dmarc_records(records: &[String]) -> Vec<Vec<(String, String)>> {
    records.iter().map(|r| tags(r)).filter(|t| t.first().is_some_and(|(k, v)| k == "v" && v == "DMARC1")).collect()
}

/// Whether a lookup ends the search for the DMARC record (RFC 7489 6.6.3): it found
/// one, or it failed. Anything else (no name, no TXT, only other TXT records) goes on
/// to the organizational domain.
pub fn dmarc_lookup_ends(lookup: &Lookup) -> bool {
    match lookup {
        Lookup::Found(records) => !dmarc_records(records).is_empty(),
        Lookup::NotFound { .. } => false,
        Lookup::Failed(_) => true,
    }
}

/// What DMARC compares with the `From` domain: the signature's `d=` and the envelope
/// sender's (Return-Path's) domain.
#[derive(Debug, Clone, Copy)]
pub struct Identifiers<'a> {
    pub from: &'a str,
    pub dkim: Option<&'a str>,
    pub envelope: &'a str,
}

/// The DMARC record found at `record` (`_dmarc.example.org`): `v=DMARC1`, its policy,
/// and whether the message's identifiers align with `From` in the record's modes
/// (`adkim=s`/`aspf=s` ask for the exact domain). `organizational` is true when the
/// record is the organizational domain's, found because `From`'s own name has none:
/// then `sp=` is the policy, when given.
pub fn dmarc_check(record: &str, lookup: &Lookup, organizational: bool, ids: Identifiers) -> Check {
    const NAME: &str = "dmarc";
    let records = match lookup {
        Lookup::Found(r) => r,
        Lookup::NotFound { nxdomain } => {
            return Check::warning(
                NAME,
                format!(
                    "no DMARC record at {record}: {}; Gmail and Yahoo require one of bulk senders",
                    not_found(*nxdomain)
                ),
                format!("publish a TXT record `v=DMARC1; p=none; rua=mailto:...` at {record}, then tighten `p=`"),
            );
        }
        Lookup::Failed(why) => return failed(NAME, record, why),
    };
    let dmarc = dmarc_records(records);
    let t = match dmarc.as_slice() {
        [] => {
            return Check::warning(
                NAME,
                format!("no DMARC record at {record}: its TXT records have no `v=DMARC1`"),
                format!("publish a TXT record `v=DMARC1; p=none; rua=mailto:...` at {record}"),
            );
        }
        [t] => t,
        many => {
            return Check::warning(
                NAME,
                format!("{} DMARC records at {record}: receivers ignore them all (RFC 7489 6.6.3)", many.len()),
                "keep one",
            );
        }
    };
    let p = tag(t, "p").unwrap_or_default().to_ascii_lowercase();
    if !matches!(p.as_str(), "none" | "quarantine" | "reject") {
        return Check::warning(
            NAME,
            format!("the DMARC record at {record} has no valid `p=` (`{p}`): receivers ignore it"),
            "write `p=none`, `p=quarantine` or `p=reject`",
        );
    }
    let (policy_tag, policy) = match tag(t, "sp").map(str::to_ascii_lowercase) {
        Some(sp) if organizational && matches!(sp.as_str(), "none" | "quarantine" | "reject") => ("sp", sp),
        _ => ("p", p),
    };
    let policy_shown = format!("{policy_tag}={policy}");
    let whose =
        if organizational { format!(" (the organizational domain's, for {})", ids.from) } else { String::new() };
    let strict = |name: &str| tag(t, name).is_some_and(|m| m.eq_ignore_ascii_case("s"));
    let (adkim_s, aspf_s) = (strict("adkim"), strict("aspf"));
    let from = normalize_domain(ids.from);
    let aligns = |domain: &str, exact: bool| {
        if exact { normalize_domain(domain) == from } else { aligned(domain, &from) }
    };
    let dkim_aligned = ids.dkim.is_some_and(|d| aligns(d, adkim_s));
    let spf_aligned = aligns(ids.envelope, aspf_s);
    let modes = match (adkim_s, aspf_s) {
        (true, true) => ", adkim=s, aspf=s",
        (true, false) => ", adkim=s",
        (false, true) => ", aspf=s",
        (false, false) => "",
    };
    let dkim_shown = ids.dkim.map_or("no signature".to_string(), |d| format!("d={d}"));
    if !dkim_aligned && !spf_aligned {
        let outcome = match policy.as_str() {
            "reject" => "asks receivers to refuse it",
            "quarantine" => "asks receivers to put it in spam",
            _ => "lets it through for now",
        };
        let detail = format!(
            "under the DMARC record at {record}{whose} ({policy_shown}{modes}) neither DKIM ({dkim_shown}) nor the Return-Path's domain {} aligns with From's {from}: the mail fails DMARC, and {policy_shown} {outcome}",
            ids.envelope
        );
        let hint = format!(
            "sign as {from} (`[email.dkim] domain`) or put `[email] return_path` on {from}{}",
            if modes.is_empty() { String::new() } else { ", or relax the record (adkim=r; aspf=r)".to_string() }
        );
        return if policy == "none" { Check::warning(NAME, detail, hint) } else { Check::error(NAME, detail, hint) };
    }
    // Aligned in relaxed mode but not in the record's strict one: DMARC rests on the
    // other identifier alone. (A relaxed misalignment is the message checks' to report.)
    if adkim_s && !dkim_aligned && ids.dkim.is_some_and(|d| aligned(d, &from)) {
        return Check::warning(
            NAME,
            format!(
                "the DMARC record at {record}{whose} has adkim=s: DKIM's {dkim_shown} is not From's {from} exactly, so DMARC rests on SPF alone"
            ),
            format!("sign as {from} (`[email.dkim] domain`), or relax the record (adkim=r)"),
        );
    }
    if aspf_s && !spf_aligned && aligned(ids.envelope, &from) {
        return Check::warning(
            NAME,
            format!(
                "the DMARC record at {record}{whose} has aspf=s: the Return-Path's domain {} is not From's {from} exactly, so DMARC rests on DKIM alone",
                ids.envelope
            ),
            format!("put `[email] return_path` on {from}, or relax the record (aspf=r)"),
        );
    }
    Check::ok(NAME, format!("DMARC at {record}{whose}: {policy_shown}{modes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(extra_headers: &str, text: &str, html: &str) -> Vec<u8> {
        format!(
            "{extra_headers}From: LWKD <lwkd@example.org>\r\nTo: list@example.org\r\nSubject: Hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
    }

    #[test]
    fn organizational_domains_follow_the_public_suffix_list() {
        assert_eq!(organizational_domain("lwkd.example.org"), "example.org");
        assert_eq!(organizational_domain("News.Example.CO.UK."), "example.co.uk");
        assert!(aligned("bounces.example.co.uk", "example.co.uk"));
        // "Last two labels" would call these aligned: co.uk is a public suffix.
        assert!(!aligned("a.co.uk", "b.co.uk"));
        assert!(!aligned("example.org", "example.net"));
    }

    #[test]
    fn a_signature_must_cover_the_four_headers() {
        let sig =
            "DKIM-Signature: v=1; a=rsa-sha256; d=mail.example.org; s=s1;\r\n\th=from:to:subject;\r\n\tbh=x; b=y\r\n";
        let eml = message(sig, "Unsubscribe: https://e.org/u", r#"<a href="https://e.org/u">x</a>"#);
        let checks = message_checks(&eml, None);
        assert_eq!(by_name(&checks, "dkim").status, Status::Ok);
        assert_eq!(by_name(&checks, "dkim-alignment").status, Status::Ok, "mail.example.org is in example.org");
        let h = by_name(&checks, "dkim-headers");
        assert_eq!(h.status, Status::Warning);
        assert!(h.detail.contains("List-Unsubscribe, List-Unsubscribe-Post"), "{}", h.detail);
        assert!(!h.detail.contains("From,"), "{}", h.detail);
    }

    #[test]
    fn hidden_or_empty_links_do_not_count() {
        let lu = "List-Unsubscribe: <mailto:u@example.org?subject=x>, <https://example.org/u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
        let hidden = r#"<div style="display: none"><a href="https://example.org/u">Unsubscribe</a></div><a href="https://example.org/u"><img src="x"></a>"#;
        let checks = message_checks(&message(lu, "send to u@example.org", hidden), None);
        assert_eq!(by_name(&checks, "list-unsubscribe").status, Status::Ok);
        assert_eq!(by_name(&checks, "unsubscribe-html").status, Status::Warning);
        assert_eq!(by_name(&checks, "unsubscribe-text").status, Status::Ok, "the mailto's address counts");
        let shown = r#"<p><a href="mailto:u@example.org?subject=x">leave the <b>list</b></a></p>"#;
        let checks = message_checks(&message(lu, "nothing here", shown), None);
        let html = by_name(&checks, "unsubscribe-html");
        assert_eq!(html.status, Status::Ok);
        assert!(html.detail.contains("leave the list"), "{}", html.detail);
        assert_eq!(by_name(&checks, "unsubscribe-text").status, Status::Warning);
        assert_eq!(by_name(&checks, "list-id").status, Status::Warning);
    }

    #[test]
    fn the_html_size_is_measured_against_gmails_clip() {
        assert_eq!(thousands(102_400), "102,400");
        assert_eq!(thousands(999), "999");
        assert_eq!(html_size(Some(&"x".repeat(GMAIL_CLIP_BYTES))).status, Status::Ok);
        let over = html_size(Some(&"x".repeat(GMAIL_CLIP_BYTES + 1)));
        assert_eq!(over.status, Status::Warning);
        assert!(over.detail.contains("102,401 bytes"), "{}", over.detail);
    }

    #[test]
    fn dns_records_are_judged() {
        let key = [1u8, 2, 3, 4];
        let found = |s: &str| Lookup::Found(vec![s.to_string()]);
        let rec = "s1._domainkey.example.org";
        assert_eq!(dkim_key_check(rec, &found("v=DKIM1; k=rsa; p=AQID BA=="), "rsa", &key).status, Status::Ok);
        let other = dkim_key_check(rec, &found("v=DKIM1; p=BQYHCA=="), "rsa", &key);
        assert_eq!(other.status, Status::Error);
        assert!(other.detail.contains("different public key"), "{}", other.detail);
        assert!(other.hint.as_deref().unwrap().contains("p=AQIDBA=="), "the hint gives the record to publish");
        assert!(dkim_key_check(rec, &found("v=DKIM1; k=rsa; p=AQIDBA=="), "ed25519", &key).detail.contains("k=rsa"));
        assert!(dkim_key_check(rec, &found("v=DKIM1; p="), "rsa", &key).detail.contains("revoked"));
        let nx = dkim_key_check(rec, &Lookup::NotFound { nxdomain: true }, "rsa", &key);
        assert_eq!(nx.status, Status::Error);
        assert!(nx.detail.contains(rec) && nx.detail.contains("NXDOMAIN"), "{}", nx.detail);
        let timeout = dkim_key_check(rec, &Lookup::Failed("request timed out".into()), "rsa", &key);
        assert!(timeout.detail.contains(rec) && timeout.detail.contains("timed out"), "{}", timeout.detail);

        assert_eq!(spf_check("example.org", &found("v=spf1 mx -all")).status, Status::Ok);
        assert_eq!(spf_check("example.org", &found("v=spf1 +all")).status, Status::Warning);
        assert_eq!(spf_check("example.org", &found("google-site-verification=x")).status, Status::Warning);
        let two = Lookup::Found(vec!["v=spf1 mx -all".into(), "v=spf1 a -all".into()]);
        assert_eq!(spf_check("example.org", &two).status, Status::Error);

        let ids = Identifiers { from: "example.org", dkim: Some("example.org"), envelope: "example.org" };
        let d =
            dmarc_check("_dmarc.example.org", &found("v=DMARC1; p=quarantine; rua=mailto:d@example.org"), false, ids);
        assert_eq!((d.status, d.detail.as_str()), (Status::Ok, "DMARC at _dmarc.example.org: p=quarantine"));
        let nx = Lookup::NotFound { nxdomain: true };
        assert_eq!(dmarc_check("_dmarc.example.org", &nx, false, ids).status, Status::Warning);
        assert_eq!(dmarc_check("_dmarc.example.org", &found("v=DMARC1; p=maybe"), false, ids).status, Status::Warning);
    }

    #[test]
    fn key_records_are_read_as_receivers_read_them() {
        let rec = "s1._domainkey.example.org";
        let found = |s: String| Lookup::Found(vec![s]);
        // An SPKI (what `openssl rsa -pubout` writes) ends with the RSAPublicKey it wraps:
        // RFC 6376's own form of `p=` is the same key.
        let rsa_public_key: Vec<u8> = (0..140).map(|i| i as u8).collect();
        let mut spki = vec![0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x05, 0x00, 0x03];
        spki.extend_from_slice(&rsa_public_key);
        let pkcs1 = found(format!("v=DKIM1; k=rsa; p={}", Base64::encode_string(&rsa_public_key)));
        assert_eq!(dkim_key_check(rec, &pkcs1, "rsa", &spki).status, Status::Ok);
        let p = Base64::encode_string(&spki);
        let with = |extra: &str| dkim_key_check(rec, &found(format!("v=DKIM1; k=rsa; {extra} p={p}")), "rsa", &spki);
        assert_eq!(with("").status, Status::Ok);
        let testing = with("t=y;");
        assert_eq!(testing.status, Status::Warning);
        assert!(testing.detail.contains("`t=y`"), "{}", testing.detail);
        assert_eq!(with("t=s;").status, Status::Ok, "t=s alone is no test mode");
        let sha1 = with("h=sha1;");
        assert_eq!(sha1.status, Status::Error);
        assert!(sha1.detail.contains("`h=sha1`"), "{}", sha1.detail);
        assert_eq!(with("h=sha1:sha256;").status, Status::Ok);
        assert_eq!(with("s=*;").status, Status::Ok);
        let other_service = with("s=tlsrpt;");
        assert_eq!(other_service.status, Status::Error);
        assert!(other_service.detail.contains("not for email"), "{}", other_service.detail);
    }

    #[test]
    fn spf_records_start_with_their_version_and_all_is_named() {
        let found = |s: &str| Lookup::Found(vec![s.to_string()]);
        assert_eq!(
            spf_check("example.org", &found(" v=spf1 -all")).status,
            Status::Warning,
            "a space first: no record"
        );
        assert_eq!(spf_check("example.org", &found("V=SPF1 mx -all")).status, Status::Ok);
        let bare = spf_check("example.org", &found("v=spf1 all ip4:192.0.2.1"));
        assert_eq!(bare.status, Status::Warning);
        assert!(bare.detail.contains("has `all`"), "{}", bare.detail);
    }

    #[test]
    fn dmarc_judges_alignment_in_the_record_s_modes() {
        let found = |s: &str| Lookup::Found(vec![s.to_string()]);
        let rec = "_dmarc.lwkd.example.org";
        // Signed as the organizational domain, bounces on a sibling subdomain: relaxed
        // alignment passes, strict fails both.
        let ids = Identifiers { from: "lwkd.example.org", dkim: Some("example.org"), envelope: "bounces.example.org" };
        assert_eq!(dmarc_check(rec, &found("v=DMARC1; p=reject"), false, ids).status, Status::Ok);
        let strict = dmarc_check(rec, &found("v=DMARC1; p=reject; adkim=s; aspf=s"), false, ids);
        assert_eq!(strict.status, Status::Error, "{strict:?}");
        assert!(strict.detail.contains("fails DMARC") && strict.detail.contains("p=reject"), "{}", strict.detail);
        assert_eq!(
            dmarc_check(rec, &found("v=DMARC1; p=none; adkim=s; aspf=s"), false, ids).status,
            Status::Warning,
            "p=none delivers it all the same"
        );
        let one = dmarc_check(rec, &found("v=DMARC1; p=reject; adkim=s"), false, ids);
        assert_eq!(one.status, Status::Warning);
        assert!(one.detail.contains("adkim=s") && one.detail.contains("SPF alone"), "{}", one.detail);
        let exact =
            Identifiers { from: "lwkd.example.org", dkim: Some("LWKD.example.org"), envelope: "lwkd.example.org" };
        let ok = dmarc_check(rec, &found("v=DMARC1; p=reject; adkim=s; aspf=s"), false, exact);
        assert_eq!(
            (ok.status, ok.detail.as_str()),
            (Status::Ok, "DMARC at _dmarc.lwkd.example.org: p=reject, adkim=s, aspf=s")
        );
        // Unsigned and bounced through another organization: fails under any record.
        let none = Identifiers { from: "example.org", dkim: None, envelope: "mailer.example.net" };
        assert_eq!(
            dmarc_check("_dmarc.example.org", &found("v=DMARC1; p=quarantine"), false, none).status,
            Status::Error
        );

        // The organizational domain's record: `sp=` is the policy for its subdomains.
        let org = dmarc_check("_dmarc.example.org", &found("v=DMARC1; p=reject; sp=none"), true, ids);
        assert_eq!(org.status, Status::Ok);
        assert_eq!(
            org.detail,
            "DMARC at _dmarc.example.org (the organizational domain's, for lwkd.example.org): sp=none"
        );
        // Only a DMARC record or a failure ends the search.
        assert!(!dmarc_lookup_ends(&found("google-site-verification=x")));
        assert!(!dmarc_lookup_ends(&Lookup::NotFound { nxdomain: false }));
        assert!(dmarc_lookup_ends(&found("v=DMARC1; p=none")));
        assert!(dmarc_lookup_ends(&Lookup::Failed("timed out".into())));
    }

    #[test]
    fn links_hidden_the_ways_templates_hide_a_preheader_do_not_count() {
        let lu = "List-Unsubscribe: <https://example.org/u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
        let html_check = |html: &str| {
            let checks = message_checks(&message(lu, "https://example.org/u", html), None);
            by_name(&checks, "unsubscribe-html").status
        };
        for hidden in [
            r#"<div style="visibility: hidden !important"><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<div style="DISPLAY:NONE!important"><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<a href="https://example.org/u"><span style="display:none">Unsubscribe</span></a>"#,
            r#"<p style="font-size:0px"><a href="https://example.org/u">Unsubscribe</a></p>"#,
            r#"<p style="opacity: 0.0"><a href="https://example.org/u">Unsubscribe</a></p>"#,
            r#"<div style="max-height:0;overflow:hidden;mso-hide:all"><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<div style="height:0px; overflow: hidden"><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<div hidden><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<a href="https://example.org/u">&zwnj;&#8203;</a>"#,
        ] {
            assert_eq!(html_check(hidden), Status::Warning, "{hidden}");
        }
        for shown in [
            r#"<p style="font-size:12px; opacity:0.8"><a href="https://example.org/u">Unsubscribe</a></p>"#,
            r#"<div style="height:0"><a href="https://example.org/u">Unsubscribe</a></div>"#,
            r#"<a href="https://example.org/u"><span style="display:none">x</span>Unsubscribe</a>"#,
        ] {
            assert_eq!(html_check(shown), Status::Ok, "{shown}");
        }
    }
}
