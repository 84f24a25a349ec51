//! `fawkes gen`: code added to a project `fawkes new` made.

use std::path::Path;

use anyhow::{bail, Context as _};

/// Where `fawkes gen channel` adds the channel's route: the line of `src/channels/mod.rs`
/// that `fawkes new` writes after the last `.channel::<…>(…)`.
const CHANNELS_MARKER: &str = "// fawkes:channels";

/// `RoomLobby` → `room_lobby`.
fn snake(camel: &str) -> String {
    heck::ToSnakeCase::to_snake_case(camel)
}

/// Checks a type name: CamelCase (`Room`, `RoomLobby`), ASCII.
pub(crate) fn check_camel(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{name}` is not a CamelCase name: start with a capital letter, then letters and digits (e.g. `Room`)");
    }
    Ok(())
}

/// The package name in `Cargo.toml` of `dir`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!("no {} here: run this in a project `fawkes new` made", manifest.display())
    })?;
    text.lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim_start().strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
        .with_context(|| format!("{} names no package", manifest.display()))
}

/// `fawkes gen channel NAME` in the project at `dir`: the channel, its test, and its route
/// on the socket. Returns the files written or changed.
pub(crate) fn channel(dir: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    check_camel(name)?;
    let package = package_name(dir)?;
    let topic = snake(name);
    let module = format!("{topic}_channel");
    let source = format!("src/channels/{module}.rs");
    let test = format!("tests/{module}.rs");
    let mod_path = dir.join("src/channels/mod.rs");
    // Everything is checked before anything is written.
    for file in [&source, &test] {
        if dir.join(file).exists() {
            bail!("{file} already exists: `fawkes gen channel {name}` ran before, or the name is taken");
        }
    }
    let mod_text = std::fs::read_to_string(&mod_path).with_context(|| {
        format!("cannot read {}: is this a project `fawkes new` made?", mod_path.display())
    })?;
    let route = format!(".channel::<{name}Channel>(\"{topic}:*\")");
    let Some(marker_at) = mod_text.find(CHANNELS_MARKER) else {
        bail!(
            "src/channels/mod.rs has no `{CHANNELS_MARKER}` line to add the route at: add \
             `{route}` to the socket's `Channels` yourself, or put the marker line after them"
        );
    };
    let fill = |template: &str| {
        template
            .replace("__CAMEL__", name)
            .replace("__TOPIC__", &topic)
            .replace("__NAME__", &package)
    };
    // The route before the marker's line, the module and its re-export after the first ones.
    let line_start = mod_text[..marker_at].rfind('\n').map_or(0, |i| i + 1);
    let indent: String =
        mod_text[line_start..marker_at].chars().take_while(|c| c.is_whitespace()).collect();
    let mut changed = String::with_capacity(mod_text.len() + 200);
    changed.push_str(&mod_text[..line_start]);
    changed.push_str(&format!("{indent}    {route}\n"));
    changed.push_str(&mod_text[line_start..]);
    let changed = changed.replacen("\nmod ", &format!("\nmod {module};\nmod "), 1).replacen(
        "\npub use ",
        &format!("\npub use {module}::{name}Channel;\npub use "),
        1,
    );
    std::fs::write(
        dir.join(&source),
        fill(include_str!("../templates/gen_channel/channel.rs.tmpl")),
    )
    .with_context(|| format!("cannot write {source}"))?;
    std::fs::write(dir.join(&test), fill(include_str!("../templates/gen_channel/test.rs.tmpl")))
        .with_context(|| format!("cannot write {test}"))?;
    std::fs::write(&mod_path, changed)
        .with_context(|| format!("cannot write {}", mod_path.display()))?;
    crate::new::format(dir);
    Ok(vec![source, test, "src/channels/mod.rs".to_owned()])
}

/// Where `fawkes gen json` adds its `resources` line: the line of `src/router.rs` that
/// `fawkes new` writes at the end of the `/api` scope.
const API_ROUTES_MARKER: &str = "// fawkes:api-routes";

/// A field of `fawkes gen json`: `title:string`.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Text,
    Integer,
    Float,
    Boolean,
    Datetime,
}

impl Kind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "string" => Self::String,
            "text" => Self::Text,
            "integer" => Self::Integer,
            "float" => Self::Float,
            "boolean" => Self::Boolean,
            "datetime" => Self::Datetime,
            _ => return None,
        })
    }

    fn rust(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Datetime => "String",
            Self::Integer => "i64",
            Self::Float => "f64",
            Self::Boolean => "bool",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Datetime => "TEXT",
            Self::Integer => "INTEGER",
            Self::Float => "REAL",
            Self::Boolean => "BOOLEAN",
        }
    }

    /// The validation rules past `required`.
    fn rules(self) -> &'static str {
        match self {
            Self::String => ", length(max = 255)",
            Self::Text => ", length(max = 100000)",
            Self::Datetime => ", length(min = 10, max = 40)",
            Self::Integer | Self::Float | Self::Boolean => "",
        }
    }

    /// A valid value in a test, and another one.
    fn samples(self) -> (&'static str, &'static str) {
        match self {
            Self::String => ("\"some title\"", "\"another title\""),
            Self::Text => ("\"some text\"", "\"other text\""),
            Self::Integer => ("42", "43"),
            Self::Float => ("1.5", "2.5"),
            Self::Boolean => ("true", "false"),
            Self::Datetime => ("\"2026-12-05T10:00:00Z\"", "\"2026-12-06T11:00:00Z\""),
        }
    }
}

/// Parses `name:type` fields.
pub(crate) fn parse_fields(specs: &[String]) -> anyhow::Result<Vec<Field>> {
    if specs.is_empty() {
        bail!("give at least one field, as name:type (types: string, text, integer, float, boolean, datetime)");
    }
    let mut fields: Vec<Field> = Vec::new();
    for spec in specs {
        let Some((name, kind)) = spec.split_once(':') else {
            bail!("`{spec}` is not a field: write name:type, e.g. title:string");
        };
        crate::new::check_name(name).map_err(|err| anyhow::anyhow!("field {err}"))?;
        if ["id", "inserted_at", "updated_at"].contains(&name) {
            bail!("`{name}` is added to every schema already: choose another field name");
        }
        if kind == "references" || kind.starts_with("references:") {
            bail!("`{spec}`: references are not generated yet; use an integer field for now");
        }
        let Some(kind) = Kind::parse(kind) else {
            bail!(
                "`{kind}` in `{spec}` is not a field type: use string, text, integer, float, \
                 boolean or datetime"
            );
        };
        if fields.iter().any(|f| f.name == name) {
            bail!("the field `{name}` is given twice");
        }
        fields.push(Field { name: name.to_owned(), kind });
    }
    Ok(fields)
}

/// What `fawkes gen json Context Schema plural fields...` writes.
pub(crate) struct Json<'a> {
    pub(crate) context: &'a str,
    pub(crate) schema: &'a str,
    pub(crate) plural: &'a str,
    pub(crate) fields: &'a [Field],
}

/// `fawkes gen json`: a migration, the context (schema, params, queries), the controller and
/// its JSON view, a test of every action, and the `resources` route. Returns the files.
pub(crate) fn json(dir: &Path, spec: &Json<'_>, timestamp: &str) -> anyhow::Result<Vec<String>> {
    check_camel(spec.context)?;
    check_camel(spec.schema)?;
    crate::new::check_name(spec.plural).map_err(|err| anyhow::anyhow!("the plural: {err}"))?;
    let package = package_name(dir)?;
    if !dir.join("src/repo.rs").is_file() {
        bail!("src/repo.rs is missing: `fawkes gen json` needs a service with a database (`fawkes new` without --no-db)");
    }
    let context = snake(spec.context);
    let singular = snake(spec.schema);
    let plural = spec.plural;
    let files = [
        format!("migrations/{timestamp}_create_{plural}.sql"),
        format!("src/{context}.rs"),
        format!("src/controllers/{singular}_controller.rs"),
        format!("src/controllers/{singular}_json.rs"),
        format!("tests/{singular}_controller.rs"),
    ];
    let context_exists = dir.join(&files[1]).exists();
    for file in files.iter().skip(usize::from(context_exists) + 1) {
        if dir.join(file).exists() {
            bail!(
                "{file} already exists: `fawkes gen json` ran before for {}, or the name is taken",
                spec.schema
            );
        }
    }
    if context_exists {
        bail!(
            "{} already exists: add the schema to the context by hand, or choose another context",
            files[1]
        );
    }
    let router_path = dir.join("src/router.rs");
    let router = std::fs::read_to_string(&router_path).context("cannot read src/router.rs")?;
    let route = format!(
        "resources \"/{plural}\" => crate::controllers::{singular}_controller, except: [new, edit];"
    );
    let Some(marker_at) = router.find(API_ROUTES_MARKER) else {
        bail!(
            "src/router.rs has no `{API_ROUTES_MARKER}` line to add the route at: add \
             `{route}` to the /api scope yourself"
        );
    };
    let lib_path = dir.join("src/lib.rs");
    let lib = std::fs::read_to_string(&lib_path).context("cannot read src/lib.rs")?;
    let controllers_path = dir.join("src/controllers/mod.rs");
    let controllers =
        std::fs::read_to_string(&controllers_path).context("cannot read src/controllers/mod.rs")?;

    let g = Gen { package: &package, context: &context, spec, singular: &singular };
    let contents = [g.migration(), g.context_module(), g.controller(), g.json_view(), g.test()];
    for (file, text) in files.iter().zip(&contents) {
        crate::new::write(&dir.join(file), text)?;
    }
    let line_start = router[..marker_at].rfind('\n').map_or(0, |i| i + 1);
    let indent = &router[line_start..marker_at];
    let router = format!("{}{indent}{route}\n{}", &router[..line_start], &router[line_start..]);
    std::fs::write(&router_path, router).context("cannot write src/router.rs")?;
    let lib = lib.replacen(
        "pub mod controllers;",
        &format!("pub mod controllers;\npub mod {context};"),
        1,
    );
    std::fs::write(&lib_path, lib).context("cannot write src/lib.rs")?;
    let controllers =
        format!("{controllers}pub mod {singular}_controller;\npub mod {singular}_json;\n");
    std::fs::write(&controllers_path, controllers)
        .context("cannot write src/controllers/mod.rs")?;
    crate::new::format(dir);
    let mut written: Vec<String> = files.to_vec();
    written.extend([
        "src/router.rs".to_owned(),
        "src/lib.rs".to_owned(),
        "src/controllers/mod.rs".to_owned(),
    ]);
    Ok(written)
}

struct Gen<'a> {
    package: &'a str,
    context: &'a str,
    spec: &'a Json<'a>,
    singular: &'a str,
}

impl Gen<'_> {
    fn columns(&self) -> String {
        let mut columns: Vec<&str> = vec!["id"];
        columns.extend(self.spec.fields.iter().map(|f| f.name.as_str()));
        columns.extend(["inserted_at", "updated_at"]);
        columns.join(", ")
    }

    fn migration(&self) -> String {
        let mut sql = format!(
            "CREATE TABLE {} (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n",
            self.spec.plural
        );
        for field in self.spec.fields {
            sql.push_str(&format!("    {} {} NOT NULL,\n", field.name, field.kind.sql()));
        }
        sql.push_str(
            "    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),\n    \
             updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))\n);\n",
        );
        sql
    }

    fn context_module(&self) -> String {
        let Json { schema, plural, fields, context } = self.spec;
        let singular = self.singular;
        let columns = self.columns();
        let mut out = format!(
            "//! The {context} context: {plural}, generated by `fawkes gen json`.\n\n\
             use serde::{{Deserialize, Serialize}};\nuse validator::Validate;\n\n\
             use crate::repo::Repo;\n\n\
             /// A row of `{plural}`.\n\
             #[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]\n\
             pub struct {schema} {{\n    /// Its id.\n    pub id: i64,\n"
        );
        for f in fields.iter() {
            out.push_str(&format!(
                "    /// `{}`.\n    pub {}: {},\n",
                f.name,
                f.name,
                f.kind.rust()
            ));
        }
        out.push_str(
            "    /// When it was created (ISO 8601, UTC).\n    pub inserted_at: String,\n    \
             /// When it last changed.\n    pub updated_at: String,\n}\n\n",
        );
        out.push_str(&format!(
            "/// The fields a client sends to create or change a {singular}: every one is required \
             to create one; a change keeps what it does not send.\n\
             #[derive(Debug, Clone, Default, Deserialize, Validate)]\npub struct {schema}Params {{\n"
        ));
        for f in fields.iter() {
            out.push_str(&format!(
                "    #[validate(required{})]\n    pub {}: Option<{}>,\n",
                f.kind.rules(),
                f.name,
                f.kind.rust()
            ));
        }
        out.push_str("}\n\n");
        out.push_str(&format!(
            "/// What the context's functions can fail with.\n#[derive(Debug)]\npub enum Error {{\n    \
             /// The params break a rule: per field.\n    Invalid(validator::ValidationErrors),\n    \
             /// No {singular} has that id.\n    NotFound,\n    /// The database failed.\n    \
             Database(sqlx::Error),\n}}\n\n\
             impl From<sqlx::Error> for Error {{\n    fn from(err: sqlx::Error) -> Self {{\n        \
             Self::Database(err)\n    }}\n}}\n\n\
             impl From<Error> for fawkes::ActionError {{\n    fn from(err: Error) -> Self {{\n        \
             match err {{\n            Error::Invalid(errors) => errors.into(),\n            \
             Error::NotFound => fawkes::ActionError::not_found(),\n            \
             Error::Database(err) => fawkes::ActionError::internal_from(err),\n        }}\n    }}\n}}\n\n"
        ));
        let binds: String =
            fields.iter().map(|f| format!("        .bind(params.{})\n", f.name)).collect();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let marks = vec!["?"; fields.len()].join(", ");
        let sets: Vec<String> = fields.iter().map(|f| format!("{} = ?", f.name)).collect();
        let merge: String = fields
            .iter()
            .map(|f| format!("        {0}: params.{0}.or(Some(old.{0})),\n", f.name))
            .collect();
        out.push_str(&format!(
            "/// Every {singular}, oldest first.\n\
             ///\n/// # Errors\n///\n/// When the database fails.\n\
             pub async fn list_{plural}(repo: &Repo) -> Result<Vec<{schema}>, Error> {{\n    \
             let sql = \"SELECT {columns} FROM {plural} ORDER BY id\";\n    \
             Ok(sqlx::query_as(sql).fetch_all(repo.pool()).await?)\n}}\n\n\
             /// The {singular} with `id`.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], or when the database fails.\n\
             pub async fn get_{singular}(repo: &Repo, id: i64) -> Result<{schema}, Error> {{\n    \
             let sql = \"SELECT {columns} FROM {plural} WHERE id = ?\";\n    \
             let found = sqlx::query_as(sql).bind(id).fetch_optional(repo.pool()).await?;\n    \
             found.ok_or(Error::NotFound)\n}}\n\n\
             /// Creates a {singular} from `params`, every field required.\n\
             ///\n/// # Errors\n///\n/// [`Error::Invalid`], or when the database fails.\n\
             pub async fn create_{singular}(repo: &Repo, params: {schema}Params) -> Result<{schema}, Error> {{\n    \
             params.validate().map_err(Error::Invalid)?;\n    \
             let sql = \"INSERT INTO {plural} ({names}) VALUES ({marks}) RETURNING {columns}\";\n    \
             Ok(sqlx::query_as(sql)\n{binds}        .fetch_one(repo.pool())\n        .await?)\n}}\n\n\
             /// Changes the {singular} with `id`: the fields `params` has, the others kept.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], [`Error::Invalid`], or when the database fails.\n\
             pub async fn update_{singular}(repo: &Repo, id: i64, params: {schema}Params) -> Result<{schema}, Error> {{\n    \
             let old = get_{singular}(repo, id).await?;\n    \
             let params = {schema}Params {{\n{merge}    }};\n    \
             params.validate().map_err(Error::Invalid)?;\n    \
             let sql = \"UPDATE {plural} SET {sets}, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') \
             WHERE id = ? RETURNING {columns}\";\n    \
             Ok(sqlx::query_as(sql)\n{binds}        .bind(id)\n        .fetch_one(repo.pool())\n        .await?)\n}}\n\n\
             /// Deletes the {singular} with `id`.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], or when the database fails.\n\
             pub async fn delete_{singular}(repo: &Repo, id: i64) -> Result<(), Error> {{\n    \
             let done = sqlx::query(\"DELETE FROM {plural} WHERE id = ?\").bind(id).execute(repo.pool()).await?;\n    \
             if done.rows_affected() == 0 {{\n        return Err(Error::NotFound);\n    }}\n    Ok(())\n}}\n",
            names = names.join(", "),
            sets = sets.join(", "),
        ));
        out
    }

    fn controller(&self) -> String {
        let Json { schema, plural, context, .. } = self.spec;
        let (singular, ctx) = (self.singular, self.context);
        format!(
            "//! `/api/{plural}`: list, create, show, update and delete {plural}; generated by \
             `fawkes gen json {context} {schema} {plural} ...`.\n\n\
             use fawkes::http::{{header, StatusCode}};\nuse fawkes::{{ActionError, Conn, State}};\n\n\
             use super::{singular}_json;\nuse crate::{ctx}::{{self, {schema}Params}};\n\
             use crate::router::{{AppRouter, AppState}};\n\n\
             /// `GET /api/{plural}`.\n\
             pub async fn index(conn: Conn, state: State<AppState>) -> Result<Conn, ActionError> {{\n    \
             let {plural} = {ctx}::list_{plural}(&state.repo).await?;\n    \
             Ok(conn.json(&{singular}_json::index(&{plural})))\n}}\n\n\
             /// `POST /api/{plural}` with `{{\"{singular}\": {{...}}}}`: 201 with it and its `location`.\n\
             pub async fn create(conn: Conn, state: State<AppState>) -> Result<Conn, ActionError> {{\n    \
             let params: {schema}Params = conn.params_in(\"{singular}\")?;\n    \
             let {singular} = {ctx}::create_{singular}(&state.repo, params).await?;\n    \
             Ok(conn\n        .put_status(StatusCode::CREATED)\n        \
             .put_resp_header(header::LOCATION, AppRouter::{singular}_show_path({singular}.id))\n        \
             .json(&{singular}_json::show(&{singular})))\n}}\n\n\
             /// `GET /api/{plural}/:id`.\n\
             pub async fn show(conn: Conn, state: State<AppState>) -> Result<Conn, ActionError> {{\n    \
             let id: i64 = conn.param(\"id\")?;\n    \
             let {singular} = {ctx}::get_{singular}(&state.repo, id).await?;\n    \
             Ok(conn.json(&{singular}_json::show(&{singular})))\n}}\n\n\
             /// `PATCH` or `PUT /api/{plural}/:id` with `{{\"{singular}\": {{...}}}}`.\n\
             pub async fn update(conn: Conn, state: State<AppState>) -> Result<Conn, ActionError> {{\n    \
             let id: i64 = conn.param(\"id\")?;\n    \
             let params: {schema}Params = conn.params_in(\"{singular}\")?;\n    \
             let {singular} = {ctx}::update_{singular}(&state.repo, id, params).await?;\n    \
             Ok(conn.json(&{singular}_json::show(&{singular})))\n}}\n\n\
             /// `DELETE /api/{plural}/:id`: 204.\n\
             pub async fn delete(conn: Conn, state: State<AppState>) -> Result<Conn, ActionError> {{\n    \
             let id: i64 = conn.param(\"id\")?;\n    \
             {ctx}::delete_{singular}(&state.repo, id).await?;\n    \
             Ok(conn.send_resp(StatusCode::NO_CONTENT, fawkes::Body::empty()))\n}}\n"
        )
    }

    fn json_view(&self) -> String {
        let Json { schema, plural, .. } = self.spec;
        let (singular, ctx) = (self.singular, self.context);
        format!(
            "//! The JSON of {plural}: `{{\"data\": ...}}`, as Phoenix's JSON views render it.\n\n\
             use serde_json::{{json, Value}};\n\nuse crate::{ctx}::{schema};\n\n\
             /// `{{\"data\": [...]}}`.\npub fn index({plural}: &[{schema}]) -> Value {{\n    \
             json!({{ \"data\": {plural}.iter().map(data).collect::<Vec<_>>() }})\n}}\n\n\
             /// `{{\"data\": {{...}}}}`.\npub fn show({singular}: &{schema}) -> Value {{\n    \
             json!({{ \"data\": data({singular}) }})\n}}\n\n\
             fn data({singular}: &{schema}) -> Value {{\n    \
             serde_json::to_value({singular}).unwrap_or(Value::Null)\n}}\n"
        )
    }

    fn test(&self) -> String {
        let Json { plural, fields, .. } = self.spec;
        let (singular, package) = (self.singular, self.package);
        let attrs = |second: bool| -> String {
            fields
                .iter()
                .map(|f| {
                    let (a, b) = f.kind.samples();
                    format!("\"{}\": {}", f.name, if second { b } else { a })
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (create_attrs, update_attrs) = (attrs(false), attrs(true));
        let first = &fields[0];
        let (first_value, _) = first.kind.samples();
        let (_, changed_value) = first.kind.samples();
        let _ = changed_value;
        let bad_value = match first.kind {
            Kind::String => "\"x\".repeat(256)".to_owned(),
            Kind::Text => "\"x\".repeat(100_001)".to_owned(),
            Kind::Datetime => "\"soon\"".to_owned(),
            _ => "\"not a value\"".to_owned(),
        };
        format!(
            "//! `/api/{plural}`, every action, generated by `fawkes gen json`.\n\n\
             use fawkes::test::ConnTest;\nuse serde_json::json;\n\n\
             async fn app() -> ConnTest {{\n    \
             static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);\n    \
             let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);\n    \
             let url = format!(\"sqlite:file:{package}_{plural}_test_{{}}_{{n}}?mode=memory&cache=shared\", std::process::id());\n    \
             let repo = {package}::repo::Repo::connect(&url).await.unwrap();\n    \
             ConnTest::new({package}::AppRouter::new({package}::router::AppState {{ repo }}))\n}}\n\n\
             #[tokio::test]\n\
             async fn every_action_of_{plural}() {{\n    \
             let app = app().await;\n    \
             let list = app.get(\"/api/{plural}\").header(\"accept\", \"application/json\").send().await;\n    \
             list.assert_status(200).assert_json(&json!({{ \"data\": [] }}));\n\n    \
             let created = app.post(\"/api/{plural}\").json(&json!({{ \"{singular}\": {{ {create_attrs} }} }})).send().await;\n    \
             created.assert_status(201);\n    \
             let id = created.json()[\"data\"][\"id\"].as_i64().expect(\"an id\");\n    \
             assert_eq!(created.json()[\"data\"][\"{first}\"], json!({first_value}));\n    \
             assert_eq!(created.header(\"location\"), Some(format!(\"/api/{plural}/{{id}}\").as_str()));\n\n    \
             let shown = app.get(&format!(\"/api/{plural}/{{id}}\")).send().await;\n    \
             shown.assert_status(200);\n    \
             assert_eq!(shown.json()[\"data\"][\"id\"], json!(id));\n\n    \
             let updated = app.patch(&format!(\"/api/{plural}/{{id}}\")).json(&json!({{ \"{singular}\": {{ {update_attrs} }} }})).send().await;\n    \
             updated.assert_status(200);\n    \
             assert_eq!(updated.json()[\"data\"][\"id\"], json!(id));\n\n    \
             // A field left out is required to create, and kept by a change.\n    \
             let missing = app.post(\"/api/{plural}\").json(&json!({{ \"{singular}\": {{}} }})).send().await;\n    \
             missing.assert_status(422);\n    \
             assert_eq!(missing.json()[\"errors\"][\"{first}\"], json!([\"can't be blank\"]));\n    \
             let kept = app.patch(&format!(\"/api/{plural}/{{id}}\")).json(&json!({{ \"{singular}\": {{}} }})).send().await;\n    \
             kept.assert_status(200);\n    \
             let invalid = app.patch(&format!(\"/api/{plural}/{{id}}\")).json(&json!({{ \"{singular}\": {{ \"{first}\": {bad_value} }} }})).send().await;\n    \
             invalid.assert_status(422);\n\n    \
             app.delete(&format!(\"/api/{plural}/{{id}}\")).send().await.assert_status(204);\n    \
             app.get(&format!(\"/api/{plural}/{{id}}\")).send().await.assert_status(404);\n    \
             app.delete(&format!(\"/api/{plural}/{{id}}\")).send().await.assert_status(404);\n    \
             app.get(\"/api/{plural}/not-an-id\").send().await.assert_status(404);\n}}\n",
            first = first.name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake("RoomLobby"), "room_lobby");
        assert_eq!(snake("Room2"), "room2");
        assert!(check_camel("Room").is_ok());
        for bad in ["room", "Room-Lobby", "", "Röom", "Room_Lobby"] {
            assert!(check_camel(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_are_name_and_a_known_type() {
        let specs = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let fields =
            parse_fields(&specs(&["title:string", "views:integer", "at:datetime"])).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1].kind.rust(), "i64");
        for (bad, says) in [
            (vec!["title"], "write name:type"),
            (vec!["title:strin"], "is not a field type"),
            (vec!["Title:string"], "is not a snake_case name"),
            (vec!["id:integer"], "added to every schema"),
            (vec!["a:string", "a:text"], "given twice"),
            (vec!["user:references:users"], "references are not generated yet"),
            (vec![], "at least one field"),
        ] {
            let err = parse_fields(&specs(&bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
