use super::*;

fn frame() -> Frame<'static> {
    Frame {
        title: "Containers",
        page: "containers",
        csrf: "c5rf".into(),
        open: false,
    }
}

fn body(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn every_template_parses() {
    let mut fresh = Environment::new();
    for (name, text) in TEMPLATES {
        if let Err(error) = fresh.add_template(name, text) {
            panic!("template {name} does not parse: {error:#}");
        }
    }
}

#[test]
fn pages_render_escaped_with_the_csrf_token() {
    let (status, html) = body(render(
        "containers.html",
        minijinja::context! { frame => serialized(&frame()), table => serialized(&view::Table::new(&[])), actions => false },
    ));
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<meta name="csrf-token" content="c5rf">"#));
    assert!(html.contains("No containers yet"));
    let items = vec![view::Item::plugin(&crate::server::PluginSummary {
        name: "<script>".into(),
        kind: "trigger".into(),
        version: "1.0".into(),
        description: "posts a webhook".into(),
        source: "builtin".into(),
        config_keys: serde_json::json!([{"name": "url", "description": "where", "required": true, "secret": false}]),
    })];
    let (_, html) = body(render(
        "items.html",
        minijinja::context! { frame => serialized(&frame()), items => serialized(&items) },
    ));
    assert!(html.contains("&lt;script&gt;") && !html.contains("<h2 id=\"item-1\"><script>"));
    assert!(html.contains("where (required)"));
}

#[test]
fn configuration_json_becomes_named_items_with_flat_fields() {
    let items = view::items_from_json(&serde_json::json!({
        "local": {"socket": "/run/docker.sock", "tls": {"verify": true}},
    }));
    assert_eq!(items.len(), 1);
    let rendered = serde_json::to_value(&items).unwrap();
    assert_eq!(rendered[0]["name"], "local");
    assert_eq!(
        rendered[0]["fields"][1],
        serde_json::json!(["tls.verify", "true"])
    );
    let items = view::items_from_json(&serde_json::json!([{"name": "hook", "plugin": "webhook"}]));
    let rendered = serde_json::to_value(&items).unwrap();
    assert_eq!(rendered[0]["name"], "hook");
    assert_eq!(
        rendered[0]["fields"],
        serde_json::json!([["plugin", "webhook"]])
    );
}

#[test]
fn last_check_times_read_to_the_second_in_utc() {
    use super::view::readable_time;
    for (stored, shown) in [
        (
            "2026-12-02T14:07:36.266042325+00:00",
            "2026-12-02 14:07:36 UTC",
        ),
        ("2026-12-02T16:07:36+02:00", "2026-12-02 14:07:36 UTC"),
        ("not a time", "not a time"),
    ] {
        assert_eq!(readable_time(stored), shown, "{stored}");
    }
}
