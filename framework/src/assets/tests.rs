use super::*;

fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fawkes-assets-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

async fn get(assets: &Assets, uri: &str) -> (u16, String, String) {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    let resp = assets.service().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let cache = resp.headers().get(header::CACHE_CONTROL).map_or("", |v| v.to_str().unwrap());
    let cache = cache.to_owned();
    assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    (status, cache, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_current_version_is_cached_for_good_and_others_revalidate() {
    let dir = dir_with(&[("app.js", "console.log(1)")]);
    let assets = Assets::load_at(&dir, "/static/").unwrap();
    let path = assets.path("app.js");
    let vsn = path.strip_prefix("/static/app.js?vsn=").expect("versioned under the prefix");
    assert_eq!(vsn.len(), 16);

    let (status, cache, body) = get(&assets, &format!("/app.js?vsn={vsn}")).await;
    assert_eq!(
        (status, cache.as_str(), body.as_str()),
        (200, VERSIONED.to_str().unwrap(), "console.log(1)")
    );
    let (status, cache, _) = get(&assets, "/app.js").await;
    assert_eq!((status, cache.as_str()), (200, "no-cache"));
    let (status, cache, _) = get(&assets, "/app.js?vsn=0123456789abcdef").await;
    assert_eq!((status, cache.as_str()), (200, "no-cache"), "an old version is not pinned");
    assert_eq!(get(&assets, "/missing.js").await.0, 404);
    assert_eq!(assets.path("missing.js"), "/static/missing.js");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn nothing_outside_the_directory_is_served() {
    let outer = dir_with(&[("secret.txt", "no")]);
    std::fs::create_dir_all(outer.join("public")).unwrap();
    std::fs::write(outer.join("public/app.css"), "a{}").unwrap();
    let assets = Assets::load(outer.join("public")).unwrap();
    assert_eq!(get(&assets, "/app.css").await.0, 200);
    for uri in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        let (status, _, body) = get(&assets, uri).await;
        assert!(status >= 400 && !body.contains("no"), "{uri}: {status} {body}");
    }
    std::fs::remove_dir_all(&outer).unwrap();
}

#[tokio::test]
async fn missing_clients_serve_nothing_and_say_what_is_missing() {
    let clients = PhoenixClients::missing();
    assert_eq!(get(&clients.phoenix, "/phoenix.mjs").await.0, 404);
    assert_eq!(
        clients.live_view.path("phoenix_live_view.esm.js"),
        "/vendor/phoenix_live_view/phoenix_live_view.esm.js"
    );
    let err = PhoenixClients::load("/nonexistent/node_modules").unwrap_err();
    assert!(err.contains("the `phoenix` client is not installed"), "{err}");

    let modules = dir_with(&[]);
    for name in ["phoenix", "phoenix_live_view"] {
        std::fs::create_dir_all(modules.join(name).join("priv/static")).unwrap();
    }
    std::fs::write(modules.join("phoenix/priv/static/phoenix.mjs"), "export {}").unwrap();
    let clients = PhoenixClients::load(&modules).unwrap();
    assert!(clients.phoenix.path("phoenix.mjs").starts_with("/vendor/phoenix/phoenix.mjs?vsn="));
    assert_eq!(get(&clients.phoenix, "/phoenix.mjs").await.2, "export {}");
    std::fs::remove_dir_all(&modules).unwrap();
}
