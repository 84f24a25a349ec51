//! The GraphQL suite: one Fawkes server answers the same data two ways, as a REST action
//! (`GET /users/42`) and as a small GraphQL query (`POST /graphql` with
//! `{ user(id: "42") { id name email } }`, served by `fawkes::graphql::GraphQL`), with the same
//! body bytes. wrk drives both in interleaved rounds, and the row gives GraphQL's req/s over
//! REST's in the same round: what parsing, validating and executing a query costs over a
//! hand-written action.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context as _};
use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject, ID};
use fawkes::{Conn, Endpoint};
use serde::Serialize;
use serde_json::{json, Value};

use crate::process::ScratchDir;
use crate::report::{median, Settings};
use crate::wrk::{self, Wrk};

/// The query the GraphQL side answers.
pub(crate) const QUERY: &str = r#"{ user(id: "42") { id name email } }"#;

#[derive(Debug, Clone, Serialize, SimpleObject)]
struct User {
    id: ID,
    name: String,
    email: String,
}

fn ada() -> User {
    User {
        id: ID("42".to_owned()),
        name: "Ada Lovelace".to_owned(),
        email: "ada@example.com".to_owned(),
    }
}

struct Query;

#[Object]
impl Query {
    async fn user(&self, id: ID) -> Option<User> {
        (id.as_str() == "42").then(ada)
    }
}

type BenchSchema = Schema<Query, EmptyMutation, EmptySubscription>;

fn graphql() -> fawkes::graphql::GraphQL<BenchSchema> {
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .limit_depth(8)
        .limit_complexity(100)
        .finish();
    fawkes::graphql::GraphQL::new(schema)
}

/// The REST side: what the GraphQL query answers, as `{"data": {"user": …}}`.
async fn rest_user(conn: Conn) -> Conn {
    #[derive(Serialize)]
    struct Data {
        user: User,
    }
    #[derive(Serialize)]
    struct Body {
        data: Data,
    }
    if conn.path_param("id") == Some("42") {
        conn.json(&Body { data: Data { user: ada() } })
    } else {
        conn.send_resp(http::StatusCode::NOT_FOUND, "not found")
    }
}

async fn put_bench_header(conn: Conn) -> Conn {
    conn.put_resp_header(crate::scenario::BENCH_HEADER, crate::scenario::BENCH_HEADER_VALUE)
}

fawkes::router! {
    pub(crate) GraphQLBench;
    pipeline api {
        plug put_bench_header;
    }
    scope "/" {
        pipe_through api;
        get "/users/:id" => rest_user;
        forward "/graphql" => graphql();
    }
}

/// `bench server fawkes-graphql --port P`: serves until stdin closes, as the other servers do.
pub(crate) fn serve(port: u16) -> anyhow::Result<()> {
    crate::server::serve(async move {
        let running = Endpoint::new(GraphQLBench::new())
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .start()
            .await?;
        Ok(running.local_addr())
    })
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy)]
enum Api {
    Rest,
    Graphql,
}

impl Api {
    const BOTH: [Api; 2] = [Api::Rest, Api::Graphql];

    fn name(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Graphql => "graphql",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Rest => "/users/42",
            Self::Graphql => "/graphql",
        }
    }

    fn lua_script(self) -> String {
        let mut script = String::new();
        if let Self::Graphql = self {
            let body = json!({ "query": QUERY }).to_string();
            script.push_str(&format!(
                "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            ));
        }
        script.push_str(crate::scenario::DONE_HOOK);
        script
    }
}

/// The body of `api`'s answer, checked to be 200.
async fn answer(addr: SocketAddr, api: Api) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{}", api.path());
    let request = match api {
        Api::Rest => client.get(url),
        Api::Graphql => client.post(url).json(&json!({ "query": QUERY })),
    };
    let resp = request.send().await?;
    if resp.status() != 200 {
        bail!("{} answered {}", api.name(), resp.status());
    }
    Ok(resp.text().await?)
}

/// Runs the suite: a row per API, `{api, best_rps, median_rps, ratio_to_rest, rounds_rps}`.
///
/// # Errors
///
/// When wrk cannot be installed, the server does not start, the two answers differ, or a run
/// fails.
pub(crate) fn run(settings: &Settings, pin: bool) -> anyhow::Result<Vec<Value>> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let wrk = Wrk {
        program: wrk::ensure()?,
        threads: settings.threads,
        connections: settings.connections,
        cpus: pin.then(|| "1".to_owned()),
    };
    let scratch = ScratchDir::new()?;
    let scripts = Api::BOTH.map(|api| scratch.path().join(format!("{}.lua", api.name())));
    for (api, path) in Api::BOTH.iter().zip(&scripts) {
        std::fs::write(path, api.lua_script())
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    let (_child, port) = crate::process::spawn_server(
        &exe,
        &["fawkes-graphql", "--port", "0"].map(std::ffi::OsStr::new),
        pin,
        "fawkes-graphql",
    )?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answers = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match answer(addr, Api::Rest).await {
                Ok(rest) => {
                    return Ok::<_, anyhow::Error>((rest, answer(addr, Api::Graphql).await?))
                }
                Err(err) if tokio::time::Instant::now() > deadline => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })?;
    if answers.0 != answers.1 {
        bail!(
            "REST and GraphQL answer different bytes:\n  rest:    {}\n  graphql: {}",
            answers.0,
            answers.1
        );
    }
    let url = |api: Api| format!("http://{addr}{}", api.path());
    for (api, script) in Api::BOTH.iter().zip(&scripts) {
        wrk.run(script, &url(*api), settings.warmup)?.check().context("warm-up failed")?;
    }
    let mut rounds: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..settings.rounds as usize {
        eprintln!("== graphql round {} of {}", round + 1, settings.rounds);
        for i in 0..2 {
            let at = (i + round) % 2;
            let result = wrk.run(&scripts[at], &url(Api::BOTH[at]), settings.round)?;
            result.check().with_context(|| Api::BOTH[at].name())?;
            rounds[at].push(result.rps);
        }
    }
    let mut rows = Vec::new();
    for (api, runs) in Api::BOTH.iter().zip(&rounds) {
        let ratios: Vec<f64> = runs.iter().zip(&rounds[0]).map(|(r, rest)| r / rest).collect();
        rows.push(json!({
            "api": api.name(),
            "request": match api { Api::Rest => "GET /users/42".to_owned(), Api::Graphql => format!("POST /graphql {QUERY}") },
            "best_rps": runs.iter().copied().fold(0.0, f64::max).round(),
            "median_rps": median(runs.clone()).round(),
            "ratio_to_rest": (median(ratios) * 1000.0).round() / 1000.0,
            "rounds_rps": runs.iter().map(|r| r.round()).collect::<Vec<_>>(),
        }));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two sides must answer the same bytes, or the row compares different work.
    #[tokio::test]
    async fn rest_and_graphql_answer_the_same_bytes() {
        let running = Endpoint::new(GraphQLBench::new()).bind("127.0.0.1:0").start().await.unwrap();
        let addr = running.local_addr();
        let (rest, graphql) =
            (answer(addr, Api::Rest).await.unwrap(), answer(addr, Api::Graphql).await.unwrap());
        assert_eq!(rest, graphql);
        assert_eq!(
            serde_json::from_str::<Value>(&rest).unwrap(),
            json!({"data": {"user": {"id": "42", "name": "Ada Lovelace", "email": "ada@example.com"}}})
        );
        assert!(Api::Graphql.lua_script().contains("wrk.method = \"POST\""));
        running.shutdown();
    }
}
