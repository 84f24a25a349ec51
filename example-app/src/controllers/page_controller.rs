//! `/`: a landing page pointing at the API.

use fawkes::Conn;

const INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Fawkes</title>
</head>
<body>
  <main>
    <h1>Fawkes</h1>
    <p>The example chat application.</p>
    <ul>
      <li><a href="/api/rooms">/api/rooms</a>: the rooms, as JSON</li>
      <li><a href="/healthz">/healthz</a>: liveness</li>
      <li><a href="/readyz">/readyz</a>: readiness</li>
    </ul>
  </main>
</body>
</html>
"#;

/// `GET /`.
pub async fn index(conn: Conn) -> Conn {
    conn.html(INDEX)
}
