//! Topology file parsing and validation: the default file, and malformed files whose
//! errors must name the file, the line and the key.

use callwall_netns::{NetnsError, Topology};

const BASE_HOSTS: &str = r#"
name = "t"
[[hosts]]
name = "a"
[[hosts]]
name = "b"
"#;

/// Parses `text` as `bad.toml` and returns (line, key, message, display).
fn fail(text: &str) -> (Option<usize>, String, String, String) {
    match Topology::from_str(text, "netns/bad.toml") {
        Ok(t) => panic!("accepted an invalid topology: {t:?}"),
        Err(e) => {
            let shown = e.to_string();
            match e {
                NetnsError::Topology { origin, line, key, message } => {
                    assert_eq!(origin, "netns/bad.toml");
                    assert!(shown.starts_with("netns/bad.toml"), "{shown}");
                    (line, key, message, shown)
                }
                other => panic!("wrong error kind: {other:?}"),
            }
        }
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).expect("needle in text")
}

#[test]
fn default_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../netns/censored-call.toml");
    let t = Topology::from_file(path).expect("default topology");
    assert_eq!(t.name(), "censored-call");
    assert_eq!(t.hosts().len(), 11);
    assert_eq!(t.ipv4_of("dns"), Some("10.9.0.2".parse().expect("ip")));
    assert_eq!(t.censor(), Some(("censor", "caller", "wan")));
    assert_eq!(t.ipv4_of("callee"), Some("10.2.0.2".parse().expect("ip")));
    assert_eq!(t.ipv6_of("caller"), Some("fd00:1::2".parse().expect("ip")));
    let caller = t.host("caller").expect("caller");
    assert_eq!(caller.interfaces[0].name, "censor");
    let censor = t.host("censor").expect("censor");
    assert!(censor.interfaces.iter().all(|i| i.addrs.is_empty()));
    assert_eq!(t.routes().len(), 18);
    assert_eq!(callwall_netns::default_topology().expect("embedded"), t, "embedded copy differs");
}

#[test]
fn unknown_key() {
    let text = format!("{BASE_HOSTS}colour = \"red\"\n");
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(line_of(&text, "colour")), "{shown}");
    assert_eq!(key, "colour", "{shown}");
    assert!(msg.contains("unknown field"), "{shown}");
}

#[test]
fn unknown_key_in_host() {
    let text = "name = \"t\"\n[[hosts]]\nname = \"a\"\nforwrd = true\n";
    let (line, key, _, shown) = fail(text);
    assert_eq!(line, Some(4), "{shown}");
    assert_eq!(key, "forwrd", "{shown}");
}

#[test]
fn bad_cidr() {
    let text = format!(
        "{BASE_HOSTS}[[links]]\na = {{ host = \"a\", addrs = [\"10.1.0.300/24\"] }}\nb = {{ host = \"b\" }}\n"
    );
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(line_of(&text, "10.1.0.300")), "{shown}");
    assert_eq!(key, "links[0].a.addrs[0]", "{shown}");
    assert!(msg.contains("not an IP address"), "{shown}");
    let text2 = text.replace("10.1.0.300/24", "10.1.0.3");
    let (_, _, msg, shown) = fail(&text2);
    assert!(msg.contains("not a CIDR"), "{shown}");
}

#[test]
fn address_outside_sandbox_ranges() {
    for addr in ["192.168.1.2/24", "2001:db8::1/64", "10.0.0.1/7"] {
        let text = format!(
            "{BASE_HOSTS}[[links]]\na = {{ host = \"a\", addrs = [\"{addr}\"] }}\nb = {{ host = \"b\" }}\n"
        );
        let (line, key, msg, shown) = fail(&text);
        assert_eq!(line, Some(line_of(&text, addr)), "{shown}");
        assert_eq!(key, "links[0].a.addrs[0]");
        assert!(msg.contains("10.0.0.0/8 or fd00::/8"), "{shown}");
    }
}

#[test]
fn unknown_host_in_link() {
    let text = format!("{BASE_HOSTS}[[links]]\na = {{ host = \"a\" }}\nb = {{ host = \"zed\" }}\n");
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(line_of(&text, "zed")), "{shown}");
    assert_eq!(key, "links[0].b.host");
    assert!(msg.contains("unknown host \"zed\""), "{shown}");
}

#[test]
fn duplicate_host() {
    let text = format!("{BASE_HOSTS}[[hosts]]\nname = \"a\"\n");
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(text.lines().count()), "{shown}");
    assert_eq!(key, "hosts[2].name");
    assert!(msg.contains("duplicate host"), "{shown}");
}

#[test]
fn bad_host_name() {
    let text = "name = \"t\"\n[[hosts]]\nname = \"Caller\"\n";
    let (line, key, _, shown) = fail(text);
    assert_eq!(line, Some(3), "{shown}");
    assert_eq!(key, "hosts[0].name");
}

#[test]
fn overlapping_subnets() {
    let text = format!(
        "{BASE_HOSTS}[[hosts]]\nname = \"c\"\n\
         [[links]]\na = {{ host = \"a\", addrs = [\"10.1.0.1/24\"] }}\nb = {{ host = \"b\", addrs = [\"10.1.0.2/24\"] }}\n\
         [[links]]\na = {{ host = \"b\", addrs = [\"10.1.0.129/25\"] }}\nb = {{ host = \"c\" }}\n"
    );
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(line_of(&text, "10.1.0.129")), "{shown}");
    assert_eq!(key, "links[1].a.addrs[0]");
    assert!(msg.contains("overlaps 10.1.0.0/24"), "{shown}");
}

#[test]
fn self_link_and_censor_rules() {
    let text = format!("{BASE_HOSTS}[[links]]\na = {{ host = \"a\" }}\nb = {{ host = \"a\" }}\n");
    let (_, _, msg, shown) = fail(&text);
    assert!(msg.contains("two different hosts"), "{shown}");

    let text = format!(
        "{BASE_HOSTS}[[links]]\na = {{ host = \"a\" }}\nb = {{ host = \"b\" }}\n[censor]\nhost = \"a\"\ninside = \"b\"\noutside = \"b\"\n"
    );
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(key, "censor.host", "{shown}");
    assert_eq!(line, Some(line_of(&text, "[censor]") + 1), "{shown}");
    assert!(msg.contains("exactly two"), "{shown}");
}

#[test]
fn route_gateway_must_be_on_link() {
    let text = format!(
        "{BASE_HOSTS}[[links]]\na = {{ host = \"a\", addrs = [\"10.1.0.1/24\"] }}\nb = {{ host = \"b\", addrs = [\"10.1.0.2/24\"] }}\n\
         [[routes]]\nhost = \"a\"\nto = \"default\"\nvia = \"10.9.0.1\"\n"
    );
    let (line, key, msg, shown) = fail(&text);
    assert_eq!(line, Some(line_of(&text, "10.9.0.1")), "{shown}");
    assert_eq!(key, "routes[0].via");
    assert!(msg.contains("not in a subnet"), "{shown}");

    let ok = text.replace("10.9.0.1", "10.1.0.2");
    Topology::from_str(&ok, "ok.toml").expect("valid route");
    let outside = ok.replace("\"default\"", "\"0.0.0.0/0\"");
    let (_, key, msg, shown) = fail(&outside);
    assert_eq!(key, "routes[0].to");
    assert!(msg.contains("outside the sandbox ranges"), "{shown}");
}

#[test]
fn toml_syntax_error_has_line() {
    let text = "name = \"t\"\n[[hosts]\nname = \"a\"\n";
    let (line, _, _, shown) = fail(text);
    assert_eq!(line, Some(2), "{shown}");
}

#[test]
fn missing_file_names_it() {
    let e = Topology::from_file("/nonexistent/x.toml").expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/x.toml"));
}
