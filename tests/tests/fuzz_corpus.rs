//! The fuzz targets on stable: every committed corpus file and crash reproducer replayed
//! through `fawkes::__fuzz`, and a property test per target, with arbitrary bytes and with
//! inputs shaped like the real thing. The nightly fuzzers (`fuzz/run.sh`) call the same
//! functions; these tests keep their checks running where there is no nightly, and make every
//! crash the fuzzers found a regression test.
//!
//! `cargo test -p tests --test fuzz_corpus -- --ignored write_seeds` rewrites the seed inputs
//! (`fuzz/corpus/<target>/seed-*`): real tokens and cookies made with the fuzz key, Phoenix
//! frames, query strings, LongPoll bodies and presence deltas.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fawkes::__fuzz::{self, KEY_BASE, SALT, SESSION_COOKIE, TARGETS};
use fawkes::security::{SecretKeyBase, Token};
use proptest::prelude::*;
use serde_json::{json, Value};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `dir`, in name order; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_seeded_corpus() {
    for (name, _) in TARGETS {
        let target = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
        assert!(target.is_file(), "no {}", target.display());
        let corpus = fuzz_dir().join("corpus").join(name);
        assert!(!files(&corpus).is_empty(), "no corpus in {}", corpus.display());
    }
}

#[test]
fn committed_corpora_and_crash_reproducers_replay_without_a_failure() {
    let mut replayed = 0;
    for (name, run) in TARGETS {
        for kind in ["corpus", "regressions", "artifacts"] {
            for file in files(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).expect("a readable file");
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
}

/// Enough cases to catch a regression in a few seconds per target in the dev profile; the
/// nightly fuzzers do the long search.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() }
}

fn with_mode(mode: u8, data: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(data.as_ref());
    out
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// JSON values of a few levels: every scalar kind, floats and big integers included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\u{e9}\u{2713}\"\\\\ ]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A ref as clients send it: absent, a string or a number; sometimes of the wrong type.
fn json_ref() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(Value::Null),
        4 => "[0-9]{1,4}".prop_map(Value::from),
        2 => any::<u32>().prop_map(Value::from),
        1 => json_value(),
    ]
}

/// Phoenix text frames in V2 (arrays) and V1 (objects) form, mostly well formed.
fn text_frame(v2: bool) -> impl Strategy<Value = String> {
    let topic = prop_oneof![8 => "(room|phoenix|user):[a-z0-9]{0,6}".prop_map(Value::from), 1 => json_value()];
    let event = prop_oneof![
        8 => "phx_join|phx_leave|heartbeat|new_msg|[a-z_]{0,8}".prop_map(Value::from),
        1 => json_value()
    ];
    (json_ref(), json_ref(), topic, event, json_value(), any::<bool>()).prop_map(
        move |(join_ref, msg_ref, topic, event, payload, extra)| {
            let frame = if v2 {
                let mut items = vec![join_ref, msg_ref, topic, event, payload];
                if extra {
                    items.push(json!("extra"));
                }
                Value::Array(items)
            } else {
                json!({"join_ref": join_ref, "ref": msg_ref, "topic": topic, "event": event, "payload": payload})
            };
            frame.to_string()
        },
    )
}

/// Binary pushes: four fields and a payload, the length bytes sometimes off.
fn binary_frame() -> impl Strategy<Value = Vec<u8>> {
    let field = "[a-z0-9:_\u{e9}]{0,12}";
    (field, field, field, field, bytes(), any::<u8>(), 0..8usize).prop_map(
        |(jr, r, topic, event, payload, skew, skew_at)| {
            let fields = [jr, r, topic, event];
            let mut out = vec![0u8];
            out.extend(fields.iter().map(|f| f.len() as u8));
            if skew_at < 5 {
                out[skew_at] = skew;
            }
            out.extend(fields.iter().flat_map(|f| f.bytes()));
            out.extend(payload);
            out
        },
    )
}

fn request_target() -> impl Strategy<Value = String> {
    let segment = "rooms|files|users|reports|messages|a|any|socket|head|websocket|[0-9]{1,2}|%2F|%C3%A9|%E2|%|%%|x\\.json|\\.json|\\{braces\\}|";
    let path = prop::collection::vec(segment, 0..8).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop::option::of("[a-z\\[\\]=&%0-9]{0,12}");
    (path, query, any::<bool>()).prop_map(|(path, query, slash)| {
        let path = if slash { format!("{path}/") } else { path };
        match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        }
    })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn key_base() -> SecretKeyBase {
    SecretKeyBase::new(KEY_BASE.to_vec()).unwrap()
}

/// A `token` target input: mode, clock and maximum age, data.
fn token_input(mode: u8, now: u64, max_age_ms: u64, data: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend(now.to_le_bytes());
    out.extend(max_age_ms.to_le_bytes());
    out.extend_from_slice(data.as_ref());
    out
}

/// Replaces the character at `at` (modulo the length) with `with`, as an attacker alters a
/// token or cookie.
fn tamper(text: &str, at: usize, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if !chars.is_empty() {
        let at = at % chars.len();
        chars[at] = with;
    }
    chars.into_iter().collect()
}

/// Presence deltas in the replication JSON format, over a few replicas, topics and keys, with
/// counters near zero and near the top of `u64`.
fn delta() -> impl Strategy<Value = Value> {
    let counter = prop_oneof![8 => 0..8u64, 1 => (u64::MAX - 3)..=u64::MAX];
    let entry = ("room:[12]", "alice|bob", json_value(), prop::option::of("[A-Za-z0-9_-]{22}"))
        .prop_map(|(topic, key, meta, prev)| {
            let meta = if meta.is_object() { meta } else { json!({"meta": meta}) };
            let mut entry = json!({"topic": topic, "key": key, "meta": meta});
            if let Some(prev) = prev {
                entry["prev"] = Value::from(prev);
            }
            entry
        });
    (
        prop_oneof![
            Just(json!({"node": "a@host", "id": 1})),
            Just(json!({"node": "b@host", "id": 2}))
        ],
        prop::collection::vec((counter.clone(), entry), 0..4),
        prop::collection::vec(counter.clone(), 0..3),
        counter,
    )
        .prop_map(|(replica, adds, removes, upto)| {
            let adds: Vec<Value> = adds.into_iter().map(|(c, e)| json!([c, e])).collect();
            json!({"replica": replica, "adds": adds, "removes": removes, "upto": upto})
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn params_with_any_bytes(data in bytes()) {
        __fuzz::params(&data);
    }

    #[test]
    fn params_with_bracketed_keys(mode in any::<u8>(), input in "[a-c\\[\\]=&%0-9A-F+]{0,64}") {
        __fuzz::params(&with_mode(mode, input));
    }

    #[test]
    fn serializer_with_any_bytes(data in bytes()) {
        __fuzz::serializer(&data);
    }

    #[test]
    fn serializer_with_phoenix_frames(
        v1 in text_frame(false),
        v2 in text_frame(true),
        binary in binary_frame(),
    ) {
        __fuzz::serializer(&with_mode(0, v1));
        __fuzz::serializer(&with_mode(1, v2));
        __fuzz::serializer(&with_mode(2, binary));
    }

    #[test]
    fn router_with_any_bytes(data in bytes()) {
        __fuzz::router(&data);
    }

    #[test]
    fn router_with_paths_near_the_routes(method in any::<u8>(), target in request_target()) {
        __fuzz::router(&with_mode(method, target));
    }

    #[test]
    fn token_with_any_bytes(data in bytes()) {
        __fuzz::token(&data);
    }

    #[test]
    fn token_with_real_and_altered_tokens(
        data in json_value(),
        encrypted in any::<bool>(),
        age in prop_oneof![Just(0u64), 0..10_000u64, Just(u64::MAX)],
        later in 0..20_000u64,
        at in any::<usize>(),
        with in prop::char::range('-', 'z'),
    ) {
        let token = if encrypted {
            Token::encrypt(&key_base(), SALT, &data)
        } else {
            Token::sign(&key_base(), SALT, &data)
        };
        let mode = u8::from(encrypted);
        let now = now_ms() + later;
        __fuzz::token(&token_input(mode, now, age, &token));
        __fuzz::token(&token_input(mode, now, age, tamper(&token, at, with)));
        let claims = json!({"data": data, "signed": now - later});
        __fuzz::token(&token_input(2, now, age, claims.to_string()));
    }

    #[test]
    fn token_with_csrf_tokens(data in prop::collection::vec(any::<u8>(), 64..160)) {
        __fuzz::token(&token_input(3, 0, 0, data));
    }

    #[test]
    fn session_cookie_with_any_bytes(data in bytes()) {
        __fuzz::session_cookie(&data);
    }

    #[test]
    fn session_cookie_with_real_and_altered_cookies(
        map in prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..4),
        mode in 0..4u8,
        at in any::<usize>(),
        with in prop::char::range('-', 'z'),
        before in "([a-z]{1,4}=[a-z0-9]{0,4}; ){0,2}",
    ) {
        let map: serde_json::Map<String, Value> = map.into_iter().collect();
        let value = if mode & 1 == 0 {
            Token::sign(&key_base(), SALT, &map)
        } else {
            Token::encrypt(&key_base(), SALT, &map)
        };
        let cookie = format!("{before}{SESSION_COOKIE}={value}");
        __fuzz::session_cookie(&with_mode(mode, &cookie));
        __fuzz::session_cookie(&with_mode(mode, tamper(&cookie, at, with)));
        let claims = json!({"data": map, "signed": now_ms()});
        __fuzz::session_cookie(&with_mode(mode | 4, claims.to_string()));
    }

    #[test]
    fn longpoll_with_any_bytes(data in bytes()) {
        __fuzz::longpoll(&data);
    }

    #[test]
    fn longpoll_with_frame_batches(
        v2 in any::<bool>(),
        frames in prop::collection::vec(prop_oneof![
            8 => text_frame(true),
            8 => text_frame(false),
            1 => Just(String::new()),
            1 => Just(" \t".to_owned()),
        ], 0..8),
        copies in prop_oneof![Just(1usize), Just(13usize)],
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let body = vec![frames.join(end); copies].join(end);
        __fuzz::longpoll(&with_mode(u8::from(v2), body));
    }

    #[test]
    fn http_with_any_bytes(data in bytes()) {
        __fuzz::http(&data);
    }

    #[test]
    fn http_with_requests_cut_and_spliced(
        chunk in any::<u8>(),
        picks in prop::collection::vec((0usize..12, any::<usize>(), any::<usize>()), 1..4),
    ) {
        // Requests, each cut somewhere and joined: pipelining, truncation, heads that run on.
        let requests = http_requests();
        let mut input = vec![chunk];
        for (pick, from, to) in picks {
            let request = requests[pick].as_bytes();
            let (a, b) = (from % (request.len() + 1), to % (request.len() + 1));
            input.extend_from_slice(&request[a.min(b)..a.max(b)]);
        }
        __fuzz::http(&input);
    }

    #[test]
    fn presence_with_any_bytes(data in bytes()) {
        __fuzz::presence(&data);
    }

    #[test]
    fn presence_with_replication_deltas(deltas in prop::collection::vec(delta(), 0..6)) {
        let lines: Vec<String> = deltas.iter().map(Value::to_string).collect();
        __fuzz::presence(lines.join("\n").as_bytes());
    }
}

/// Whole requests for the `http` target: plain, pipelined, with bodies (sized, chunked, cut
/// short), HEAD, a forward, malformed heads.
fn http_requests() -> Vec<String> {
    let form = "name=x&tags[]=a&tags[]=b";
    vec![
        "GET /rooms/42?since=3 HTTP/1.1\r\nhost: a\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nhost: a\r\n\r\nHEAD /head/3 HTTP/1.1\r\nhost: a\r\n\r\nGET /nope HTTP/1.1\r\nhost: a\r\n\r\n".to_owned(),
        format!("POST /rooms/7 HTTP/1.1\r\nhost: a\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}", form.len()),
        "POST /rooms/7 HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"a\":[1\r\n3\r\n,2]\r\n1\r\n}\r\n0\r\n\r\n".to_owned(),
        "POST /rooms/7 HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"cut\":".to_owned(),
        "GET /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nhost: a\r\n\r\n".to_owned(),
        "GET /files/a%2Fb/c HTTP/1.0\r\n\r\n".to_owned(),
        "GET /rooms/1 HTTP/1.1\r\n\r\n".to_owned(),
        "GET /rooms/1 HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n".to_owned(),
        "DELETE /rooms/1/messages/2 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n".to_owned(),
        "GARBAGE\r\n\r\n".to_owned(),
        format!("GET /?{} HTTP/1.1\r\nhost: a\r\n\r\n", "a[b]".repeat(40)),
    ]
}

/// Writes the seed inputs of every corpus: run by hand (`--ignored write_seeds`), never in CI.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand to regenerate the seeds"]
fn write_seeds() {
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();

    for (i, query) in [
        "a=1&b=2",
        "user[name]=jo&user[age]=3",
        "ids[]=1&ids[]=2",
        "l[][x]=1&l[][y]=2&l[][x]=3",
        "m[][]=1&m[][]=2",
        "q=a%20b+c&e=%E2%9C%93",
        "bad[=1&[x]=2&c[d]e=3",
        "a[b][c][d][e][f][g]=deep",
        "a=1&a[b]=2&a[]=3",
        "page=3&sort=desc&filter[status]=open&filter[tags][]=a&filter[tags][]=b",
        "_csrf_token=abc&user[email]=x%40y.z&user[password]=p%26w&user[roles][]=admin",
    ]
    .into_iter()
    .enumerate()
    {
        seeds.push(("params", with_mode(i as u8 % 4, query)));
    }

    for frame in [
        r#"{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}"#,
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}"#,
        r#"{"topic":"room:1","event":"new_msg","payload":{"body":"hi","n":1.5e3,"l":[1,-2,null,true]},"ref":"3","join_ref":"1"}"#,
    ] {
        seeds.push(("serializer", with_mode(0, frame)));
    }
    for frame in [
        r#"["1","1","room:lobby","phx_join",{"token":"abc"}]"#,
        r#"[null,"2","phoenix","heartbeat",{}]"#,
        r#"["1","3","room:lobby","new_msg",{"body":"h\u00e9llo \u2713","n":12345678901234567890,"f":0.1}]"#,
        r#"["1",4,"room:lobby","phx_leave",{}]"#,
    ] {
        seeds.push(("serializer", with_mode(1, frame)));
    }
    let mut binary = vec![0u8, 1, 1, 10, 6];
    binary.extend_from_slice(b"13room:lobbyupload");
    binary.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2]);
    seeds.push(("serializer", with_mode(2, binary)));

    for (method, target) in [
        (0, "/"),
        (0, "/rooms/42"),
        (1, "/rooms/42"),
        (2, "/rooms/42"),
        (0, "/rooms/42/messages/7?since=3"),
        (4, "/rooms/42/messages/7/"),
        (0, "/rooms/caf%C3%A9/"),
        (0, "/files/a/b/c.txt"),
        (0, "/files/a%2Fb/%20c"),
        (0, "/users/7/files/x/y?z[]=1&z[]=2"),
        (0, "/reports/q1.json"),
        (0, "/a/1/2/3/4/5"),
        (0, "/a/1/2/3/%34/5"),
        (2, "/{braces}/9"),
        (7, "/any/x"),
        (0, "/socket/websocket?vsn=2.0.0"),
        (1, "/socket/longpoll?vsn=2.0.0&token=abc"),
        (0, "/socket"),
        (0, "http://example.com/rooms/1?x=1"),
        (0, "*"),
        (6, "/head/3"),
        (6, "/rooms/3"),
        (0, "/nope"),
    ] {
        seeds.push(("router", with_mode(method, target)));
    }

    let base = key_base();
    let now = now_ms() + 1_000;
    let hour = 3_600_000;
    let user = json!({"user_id": 42, "scope": ["read", "write"]});
    let signed = Token::sign(&base, SALT, &user);
    let sealed = Token::encrypt(&base, SALT, &user);
    let session_id = Token::sign(&base, SALT, "c2Vzc2lvbi1pZC1vZi0xOGI");
    seeds.push(("token", token_input(0, now, hour, &signed)));
    seeds.push(("token", token_input(0, now + 2 * hour, hour, &signed)));
    seeds.push(("token", token_input(0, now, u64::MAX, &session_id)));
    seeds.push(("token", token_input(1, now, hour, &sealed)));
    seeds.push(("token", token_input(1, now + 2 * hour, hour, &sealed)));
    seeds.push((
        "token",
        token_input(2, now, hour, r#"{"data":{"user_id":7},"signed":1700000000000}"#),
    ));
    seeds.push((
        "token",
        token_input(2, now, u64::MAX, r#"{"data":"id","signed":18446744073709551615}"#),
    ));
    let mut csrf: Vec<u8> = (0..64).collect();
    csrf.extend_from_slice(
        b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw",
    );
    seeds.push(("token", token_input(3, 0, 0, csrf)));

    let session =
        json!({"user_id": 1, "_csrf_token": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"});
    let signed = Token::sign(&base, SALT, &session);
    let sealed = Token::encrypt(&base, SALT, &session);
    seeds.push(("session_cookie", with_mode(0, format!("{SESSION_COOKIE}={signed}; theme=dark"))));
    seeds.push(("session_cookie", with_mode(1, format!("lang=en; {SESSION_COOKIE}={sealed}"))));
    seeds.push(("session_cookie", with_mode(2, format!("{SESSION_COOKIE}={signed}"))));
    seeds.push(("session_cookie", with_mode(0, format!("a=b\nc=d; {SESSION_COOKIE}={signed}"))));
    seeds
        .push(("session_cookie", with_mode(4, r#"{"data":{"user_id":1},"signed":1700000000000}"#)));
    seeds.push(("session_cookie", with_mode(5, r#"{"data":{"cart":[1,2.5,"x"]},"signed":0}"#)));

    let v2_batch = concat!(
        r#"["1","1","room:lobby","phx_join",{}]"#,
        "\n",
        r#"["1","2","room:lobby","new_msg",{"body":"hi"}]"#,
        "\n",
        r#"[null,"3","phoenix","heartbeat",{}]"#,
        "\n",
    );
    seeds.push(("longpoll", with_mode(1, v2_batch)));
    let v1_batch = concat!(
        r#"{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}"#,
        "\r\n",
        "\r\n",
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}"#,
    );
    seeds.push(("longpoll", with_mode(0, v1_batch)));
    seeds.push((
        "longpoll",
        with_mode(1, r#"[null,"1","phoenix","heartbeat",{}]"#.repeat(101).replace("][", "]\n[")),
    ));

    let deltas = [
        json!({"replica": {"node": "a@host", "id": 1}, "adds": [[1, {"topic": "room:lobby", "key": "alice", "meta": {"online_at": "1700000000"}}]], "removes": [], "upto": 0}),
        json!({"replica": {"node": "b@host", "id": 2}, "adds": [[3, {"topic": "room:lobby", "key": "bob", "meta": {"status": "away"}, "prev": "AAAAAAAAAAIAAAAAAAAAAQ"}]], "removes": [1, 2], "upto": 0}),
        json!({"replica": {"node": "a@host", "id": 1}, "adds": [[2, {"topic": "room:1", "key": "alice", "meta": {}}]], "removes": [], "upto": 2}),
        json!({"replica": {"node": "b@host", "id": 2}, "adds": [], "removes": [], "upto": 4294967296_u64}),
    ];
    let lines: Vec<String> = deltas.iter().map(Value::to_string).collect();
    seeds.push(("presence", lines.join("\n").into_bytes()));
    seeds.push(("presence", lines[0].clone().into_bytes()));
    seeds.push(("presence", format!("{}\n{}", lines[2], lines[0]).into_bytes()));

    for (chunk, request) in http_requests().into_iter().enumerate() {
        seeds.push(("http", with_mode(chunk as u8 * 7, request)));
    }

    for (i, (target, data)) in seeds.iter().enumerate() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{i:03}")), data).unwrap();
    }
}
