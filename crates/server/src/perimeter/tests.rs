use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef";

fn check(hosts: &Hosts, cases: &[(Option<&str>, Destination)]) {
    for (host, want) in cases {
        assert_eq!(&hosts.classify(*host), want, "Host {host:?}");
    }
}

fn preview(port: u16) -> Destination {
    Destination::Preview {
        workspace: ID.into(),
        port,
    }
}

#[test]
fn hosts_are_classified_strictly() {
    let plain = Hosts::new(&[], None);
    let preview_8000 = format!("8000-{ID}.localhost:8080");
    let preview_upper = format!("3000-{}.LOCALHOST.", ID);
    let bad_ports = [
        format!("08000-{ID}.localhost"),
        format!("+8000-{ID}.localhost"),
        format!("0-{ID}.localhost"),
        format!("70000-{ID}.localhost"),
        format!("8000-{ID}.x.localhost"),
        "8000-notanid.localhost".to_string(),
        "foo.localhost".to_string(),
    ];
    let mut cases: Vec<(Option<&str>, Destination)> = vec![
        (Some("127.0.0.1:8080"), Destination::Cove),
        (Some("localhost:8080"), Destination::Cove),
        (Some("LOCALHOST"), Destination::Cove),
        (Some("[::1]:8080"), Destination::Cove),
        (Some("192.0.2.2"), Destination::Cove),
        (None, Destination::Cove),
        // DNS rebinding: the attacker's own name, pointed at this machine.
        (Some("evil.example:8080"), Destination::Refused),
        (Some("localhost.evil.example"), Destination::Refused),
        (Some("127.0.0.1.nip.io"), Destination::Refused),
        (Some("bad host"), Destination::Refused),
        (Some("localhost:99999"), Destination::Refused),
        (Some(&preview_8000), preview(8000)),
        (Some(&preview_upper), preview(3000)),
    ];
    for bad in &bad_ports {
        cases.push((Some(bad), Destination::Refused));
    }
    check(&plain, &cases);

    let public = Hosts::new(
        &["Cove.Example.com".to_string()],
        Some("preview.example.com"),
    );
    let on_domain = format!("5173-{ID}.preview.example.com");
    check(
        &public,
        &[
            (Some("cove.example.com"), Destination::Cove),
            (Some("cove.example.com:443"), Destination::Cove),
            (Some("other.example.com"), Destination::Refused),
            (Some("preview.example.com"), Destination::Refused),
            (Some(&on_domain), preview(5173)),
        ],
    );
}

#[test]
fn preview_urls_follow_the_name_cove_was_reached_by() {
    let plain = Hosts::new(&[], None);
    assert_eq!(
        plain.preview_template("http", "127.0.0.1:8080").as_deref(),
        Some("http://{port}-{id}.localhost:8080/")
    );
    assert_eq!(
        plain.preview_template("http", "[::1]:9000").as_deref(),
        Some("http://{port}-{id}.localhost:9000/")
    );
    assert_eq!(plain.preview_template("https", "cove.example.com"), None);
    let public = Hosts::new(&[], Some("preview.example.com"));
    assert_eq!(
        public
            .preview_template("https", "cove.example.com")
            .as_deref(),
        Some("https://{port}-{id}.preview.example.com/")
    );
}

#[test]
fn ports_are_decimal_without_tricks() {
    for good in ["1", "80", "8000", "65535"] {
        assert!(parse_port(good).is_some(), "{good}");
    }
    for bad in [
        "", "0", "08000", "+8000", "-1", "65536", "8000 ", "0x50", "%38000", "１２",
    ] {
        assert_eq!(parse_port(bad), None, "{bad:?}");
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_static(v));
    }
    map
}

#[test]
fn state_changes_come_from_cove_itself() {
    let host = Some("127.0.0.1:8080");
    let ok = |h: &[(&'static str, &'static str)]| check_same_origin(&headers(h), host);
    assert!(ok(&[]).is_ok(), "scripts send no Origin");
    assert!(ok(&[("origin", "http://127.0.0.1:8080")]).is_ok());
    assert!(
        ok(&[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])
        .is_ok()
    );
    assert!(
        ok(&[("sec-fetch-site", "none")]).is_ok(),
        "typed into the address bar"
    );
    for refused in [
        &[("origin", "http://evil.example")][..],
        &[("origin", "null")],
        &[("origin", "http://127.0.0.1:8081")],
        &[("origin", "http://127.0.0.1")],
        &[(
            "origin",
            &*Box::leak(format!("http://8000-{ID}.localhost:8080").into_boxed_str()),
        )],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        assert!(ok(refused).is_err(), "{refused:?}");
    }
    // Default ports are the same origin, written or not; behind a TLS proxy cove sees a
    // Host without a port and the browser an https origin.
    let named = |origin: &'static str, host: &str| {
        check_same_origin(&headers(&[("origin", origin)]), Some(host)).is_ok()
    };
    assert!(named("https://cove.example.com", "cove.example.com:443"));
    assert!(named("https://cove.example.com", "cove.example.com"));
    assert!(named("http://cove.example.com", "cove.example.com"));
    assert!(!named("https://cove.example.com:8443", "cove.example.com"));
    assert!(!named("https://cove.example.com", "cove.example.com:8443"));
}

#[test]
fn path_previews_are_recognised() {
    assert!(is_path_preview("/w/demo/proxy/8000/"));
    assert!(is_path_preview("/w/demo/absproxy/8000/x"));
    assert!(!is_path_preview("/w/demo"));
    assert!(!is_path_preview("/api/workspaces/demo/proxy"));
}
