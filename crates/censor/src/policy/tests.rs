//! Compiling policies: the chain, errors naming the key, round trips, patterns.

use super::*;

fn parse(text: &str) -> Result<Policy, String> {
    let raw: raw::Policy = toml::from_str(text).map_err(|e| e.to_string())?;
    let resolve = |name: &str| (name == "relay").then(|| vec!["10.3.0.2".parse().unwrap()]);
    Policy::compile(&raw, &resolve).map_err(|e| e.to_string())
}

#[test]
fn compiles_a_chain() {
    let p = parse(
        r#"
        default = "pass"
        [[rules]]
        name = "throttle"
        match = { proto = "udp", dst_port = ["596-599", "1400"], server = ["relay", "10.9.0.0/16"] }
        action = { police = "64kbit", loss = "10%" }
        [[rules]]
        name = "drop-rest"
        active = { from = "5s" }
        action = "drop"
        "#,
    )
    .unwrap();
    assert_eq!(p.rules.len(), 2);
    let m = &p.rules[0].m;
    let dst_port = m.find(|c| match c {
        Condition::DstPort(l) => Some(l),
        _ => None,
    });
    assert!(dst_port.unwrap().contains(598));
    assert!(!dst_port.unwrap().contains(600));
    let server = m.find(|c| match c {
        Condition::Server(l) => Some(l),
        _ => None,
    });
    assert!(server.unwrap()[0].contains("10.3.0.2".parse().unwrap()));
    // One condition per key written; `proto = "udp"` first, in key order.
    assert_eq!(m.conditions.len(), 3);
    assert!(matches!(m.conditions[0], Condition::Proto(ProtoMatch::Udp)));
    // 64 kbit/s = 8000 B/s: 100 ms of it is 800 B, under the 6000 B floor.
    assert_eq!(p.rules[0].action.police, Some((8000, 6000)));
    assert_eq!(p.rules[0].action.summary(), "loss 10% + police 64kbit");
    assert_eq!(p.rules[1].active_from_ns, 5_000_000_000);
    assert!(p.rules[1].action.drop);
}

#[test]
fn rejects_bad_policies_naming_the_key() {
    let cases = [
        (
            r#"[[rules]]
name = "x"
match = { bogus = 1 }
action = "drop""#,
            "unknown field `bogus`",
        ),
        (
            r#"[[rules]]
name = "x"
action = "explode""#,
            "unknown action",
        ),
        (
            r#"[[rules]]
name = "x"
action = { drop = true, police = "1kbit" }"#,
            "action.drop",
        ),
        (
            r#"[[rules]]
name = "x"
match = { server = ["nowhere"] }
action = "drop""#,
            "unknown host \"nowhere\"",
        ),
        (
            r#"[[rules]]
name = "x"
match = { dst_port = "70000" }
action = "drop""#,
            "invalid port",
        ),
        (
            r#"[[rules]]
name = "x"
action = { police = "fast" }"#,
            "invalid rate",
        ),
        (
            r#"[[rules]]
name = "a"
action = "drop"
[[rules]]
name = "a"
action = "pass""#,
            "unique",
        ),
        (
            r#"[[rules]]
name = "x"
action = { residual = "10s" }"#,
            "residual",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.contains(want), "{text}\n=> {err}\nwanted {want}");
    }
}

#[test]
fn raw_policies_round_trip_through_json() {
    // The harness hands the raw policy to the censor process as JSON.
    let text = r#"
        [[rules]]
        name = "a"
        match = { dst_port = ["596-599", "1400"], server_port = 443, sni = ["*.x"] }
        action = { police = "64kbit", loss = "10%", delay = "5ms" }
        [[rules]]
        name = "b"
        action = "reject"
    "#;
    let raw: raw::Policy = toml::from_str(text).unwrap();
    let json = serde_json::to_string(&raw).unwrap();
    let back: raw::Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(raw, back, "{json}");
}

#[test]
fn name_patterns() {
    let p = NamePattern::parse("*.googlevideo.com").unwrap();
    assert!(p.matches("rr1.googlevideo.com"));
    assert!(p.matches("googlevideo.com"));
    assert!(!p.matches("googlevideo.com.evil"));
    assert!(NamePattern::parse("*twimg*").unwrap().matches("pbs.TWIMG.com"));
    assert!(NamePattern::parse("t.co").unwrap().matches("T.CO"));
    assert_eq!(NamePattern::parse("a*b"), Err(NamePatternError::MisplacedStar("a*b".into())));
    assert_eq!(NamePattern::parse("*"), Err(NamePatternError::Empty("*".into())));
}

#[test]
fn cidrs() {
    let c: Cidr = "10.3.0.0/24".parse().unwrap();
    assert!(c.contains("10.3.0.200".parse().unwrap()));
    assert!(!c.contains("10.4.0.1".parse().unwrap()));
    let c6: Cidr = "fd00:3::/64".parse().unwrap();
    assert!(c6.contains("fd00:3::2".parse().unwrap()));
    assert_eq!(
        "10.0.0.0/33".parse::<Cidr>(),
        Err(callwall_units::CidrError::Invalid("10.0.0.0/33".into()))
    );
    assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("10.1.1.1".parse().unwrap()));
}

#[test]
fn every_match_key_is_one_condition() {
    let p = parse(
        r#"
        [[rules]]
        name = "all"
        action = "drop"
        [rules.match]
        dir = "up"
        proto = "udp"
        src_port = "1-2"
        dst_port = "3"
        server_port = ["4"]
        src = ["10.1.0.0/16"]
        dst = ["relay"]
        server = ["10.3.0.2"]
        server_not = ["fd00::/8"]
        min_payload = 1
        max_payload = 2
        first_packets = 3
        min_age = "1s"
        max_age = "2s"
        min_flow_bytes = "1KiB"
        min_client_bytes = "1B"
        min_server_bytes = "2B"
        client_port_above_server_port = true
        label = ["stun"]
        first_label = ["stun"]
        not_label = ["dtls"]
        sni = ["*.example.com"]
        sni_not = ["ok.example.com"]
        sni_first_packet = true
        alpn = ["h3"]
        dtls_fingerprint = ["ABC"]
        tls_fingerprint = ["DEF"]
        stun_software = ["*coturn*"]
        stun_username = ["u"]
        stun_realm = ["r"]
        "#,
    )
    .unwrap();
    let c = &p.rules[0].m.conditions;
    // 30 keys; `sni_first_packet` modifies `sni`/`sni_not` rather than being a condition.
    assert_eq!(c.len(), 29);
    // The cheap conditions come before those that need the classifiers.
    let first_inspecting = c.iter().position(Condition::needs_inspection).unwrap();
    assert!(c[first_inspecting..].iter().all(Condition::needs_inspection));
    assert_eq!(first_inspecting, 18);
    assert!(matches!(c[21], Condition::Sni { first_packet: true, .. }));
    assert!(matches!(&c[24], Condition::DtlsFingerprint(f) if f[0] == "abc"));
    assert!(matches!(&c[25], Condition::TlsFingerprint(f) if f[0] == "def"));
    // `"any"` is no condition at all.
    let any = parse(
        "[[rules]]\nname = \"a\"\nmatch = { dir = \"any\", proto = \"any\" }\naction = \"drop\"",
    )
    .unwrap();
    assert!(any.rules[0].m.conditions.is_empty());
}

#[test]
fn keys_of_lists_exactly_what_deny_unknown_fields_accepts() {
    let keys = raw::match_keys();
    assert!(keys.contains(&"dir") && keys.contains(&"stun_realm"));
    for key in keys {
        // A known key with a value of the wrong type is a type error, never "unknown field".
        let err = toml::from_str::<raw::Match>(&format!("{key} = [[]]")).unwrap_err();
        assert!(!err.to_string().contains("unknown field"), "{key}: {err}");
    }
    let err = toml::from_str::<raw::Match>("no_such_key = 1").unwrap_err().to_string();
    assert!(err.contains("unknown field"), "{err}");
    for key in keys {
        assert!(err.contains(&format!("`{key}`")), "{key} missing from serde's list: {err}");
    }
    assert!(raw::action_keys().contains(&"block_probability"));
    // Renamed fields are listed under their key.
    assert!(raw::keys_of::<raw::Rule>().contains(&"match"));
    assert_eq!(raw::keys_of::<raw::Window>(), ["from", "until"]);
    // Not a struct: nothing to list.
    assert!(raw::keys_of::<raw::Action>().is_empty());
}

#[test]
fn default_burst_is_100ms_of_the_rate_with_a_floor_of_four_packets() {
    use crate::policy::default_burst;
    // 64 kbit/s and 128 kbit/s: the floor.
    assert_eq!(default_burst(8_000), 6_000);
    assert_eq!(default_burst(16_000), 6_000);
    // 480 kbit/s is where 100 ms reaches the floor.
    assert_eq!(default_burst(60_000), 6_000);
    assert_eq!(default_burst(60_010), 6_001);
    // 1, 4, 8 Mbit/s: 100 ms of the rate.
    assert_eq!(default_burst(125_000), 12_500);
    assert_eq!(default_burst(500_000), 50_000);
    assert_eq!(default_burst(1_000_000), 100_000);
    // No overflow at absurd rates.
    assert_eq!(default_burst(u64::MAX), u64::MAX / 10);
    let with = |burst: &str| {
        let p =
            parse(&format!("[[rules]]\nname = \"t\"\naction = {{ police = \"8mbit\"{burst} }}"))
                .unwrap();
        p.rules[0].action.police
    };
    assert_eq!(with(""), Some((1_000_000, 100_000)));
    // An explicit burst wins, however small.
    assert_eq!(with(", burst = \"1500B\""), Some((1_000_000, 1_500)));
}
