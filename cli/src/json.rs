//! `fawkes gen json`: a JSON resource over the database, like `mix phx.gen.json`.

use std::path::Path;

use anyhow::{bail, Context as _};

use crate::gen::{check_camel, insert_before_marker, package_name, snake};

/// Where `fawkes gen json` adds its `resources` line: the line of `src/router.rs` that
/// `fawkes new` writes at the end of the `/api` scope.
const API_ROUTES_MARKER: &str = "// fawkes:api-routes";

/// The SQL a project speaks: what its `src/repo.rs` connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect of the project at `dir`, from the pool its `src/repo.rs` holds.
    fn of(dir: &Path) -> anyhow::Result<Self> {
        let Ok(repo) = std::fs::read_to_string(dir.join("src/repo.rs")) else {
            bail!("src/repo.rs is missing: `fawkes gen json` needs a service with a database (`fawkes new` without --no-db)");
        };
        if repo.contains("PgPool") {
            Ok(Self::Postgres)
        } else if repo.contains("SqlitePool") {
            Ok(Self::Sqlite)
        } else {
            bail!("src/repo.rs holds neither a SqlitePool nor a PgPool: which database is this?")
        }
    }

    /// The `n`th bind parameter (from 1).
    fn mark(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
        }
    }

    /// The time now as ISO 8601 text in UTC, in SQL.
    fn now(self) -> &'static str {
        match self {
            Self::Sqlite => "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            Self::Postgres => "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Self::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Self::Postgres => "BIGSERIAL PRIMARY KEY",
        }
    }

    /// A 64-bit integer column.
    fn bigint(self) -> &'static str {
        match self {
            Self::Sqlite => "INTEGER",
            Self::Postgres => "BIGINT",
        }
    }
}

/// A field of `fawkes gen json`: `title:string`, `user_id:references:users`.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    name: String,
    kind: Kind,
    /// The table a `references` field points into.
    table: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Text,
    Integer,
    Float,
    Boolean,
    Datetime,
    References,
}

/// What `fawkes gen json` says when a type is unknown.
const TYPES: &str = "string, text, integer, float, boolean, datetime or references:TABLE";

impl Kind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "string" => Self::String,
            "text" => Self::Text,
            "integer" => Self::Integer,
            "float" => Self::Float,
            "boolean" => Self::Boolean,
            "datetime" => Self::Datetime,
            "references" => Self::References,
            _ => return None,
        })
    }

    fn rust(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Datetime => "String",
            Self::Integer | Self::References => "i64",
            Self::Float => "f64",
            Self::Boolean => "bool",
        }
    }

    fn sql(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Self::String | Self::Text | Self::Datetime, _) => "TEXT",
            (Self::Integer | Self::References, _) => dialect.bigint(),
            (Self::Float, Dialect::Sqlite) => "REAL",
            (Self::Float, Dialect::Postgres) => "DOUBLE PRECISION",
            (Self::Boolean, _) => "BOOLEAN",
        }
    }

    /// The validation rules of the params' field: required, and a bound on text. A
    /// reference is optional: it is checked against its table instead.
    fn rules(self) -> Option<&'static str> {
        match self {
            Self::String => Some("required, length(max = 255)"),
            Self::Text => Some("required, length(max = 100000)"),
            Self::Datetime => Some("required, length(min = 10, max = 40)"),
            Self::Integer | Self::Float | Self::Boolean => Some("required"),
            Self::References => None,
        }
    }

    /// A valid value in a test, and another one.
    fn samples(self) -> (&'static str, &'static str) {
        match self {
            Self::String => ("\"some title\"", "\"another title\""),
            Self::Text => ("\"some text\"", "\"other text\""),
            Self::Integer | Self::References => ("42", "43"),
            Self::Float => ("1.5", "2.5"),
            Self::Boolean => ("true", "false"),
            Self::Datetime => ("\"2026-12-05T10:00:00Z\"", "\"2026-12-06T11:00:00Z\""),
        }
    }

    /// A value its rules refuse, as Rust.
    fn invalid(self) -> &'static str {
        match self {
            Self::String => "\"x\".repeat(256)",
            Self::Text => "\"x\".repeat(100_001)",
            Self::Datetime => "\"soon\"",
            _ => "\"not a value\"",
        }
    }
}

/// Parses `name:type` fields (`name:references:table` for a reference).
pub(crate) fn parse_fields(specs: &[String]) -> anyhow::Result<Vec<Field>> {
    if specs.is_empty() {
        bail!("give at least one field, as name:type (types: {TYPES})");
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
        let (kind, table) = match kind.split_once(':') {
            Some(("references", table)) => {
                crate::new::check_name(table)
                    .map_err(|err| anyhow::anyhow!("the table of `{spec}`: {err}"))?;
                (Kind::References, Some(table.to_owned()))
            }
            _ if kind == "references" => {
                bail!("`{spec}`: say which table it references, as name:references:table (e.g. user_id:references:users)")
            }
            _ => match Kind::parse(kind) {
                Some(kind) => (kind, None),
                None => bail!("`{kind}` in `{spec}` is not a field type: use {TYPES}"),
            },
        };
        if fields.iter().any(|f| f.name == name) {
            bail!("the field `{name}` is given twice");
        }
        fields.push(Field { name: name.to_owned(), kind, table });
    }
    if fields.iter().all(|f| f.kind == Kind::References) {
        bail!("give at least one field that is not a reference");
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

/// Whether a migration in `dir/migrations` creates `table`.
fn table_exists(dir: &Path, table: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir.join("migrations")) else {
        return false;
    };
    let wanted = [
        format!("create table {table} "),
        format!("create table {table}("),
        format!("create table if not exists {table} "),
        format!("create table if not exists {table}("),
    ];
    entries.flatten().any(|entry| {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default().to_ascii_lowercase();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        wanted.iter().any(|w| text.contains(w.as_str()))
    })
}

/// The migration version `timestamp`, or the first number after it no migration in
/// `dir/migrations` has: two generators run in one second still order their migrations.
fn free_version(dir: &Path, timestamp: &str) -> String {
    let taken: Vec<String> = std::fs::read_dir(dir.join("migrations"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| Some(e.file_name().to_str()?.split('_').next()?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let Ok(mut version) = timestamp.parse::<u64>() else {
        return timestamp.to_owned();
    };
    while taken.contains(&version.to_string()) {
        version += 1;
    }
    version.to_string()
}

/// `fawkes gen json`: a migration, the context (schema, params, queries; added to the
/// context's module when it exists), the controller and its JSON view, a test of every
/// action, and the `resources` route. Returns the files written or changed.
pub(crate) fn json(dir: &Path, spec: &Json<'_>, timestamp: &str) -> anyhow::Result<Vec<String>> {
    check_camel(spec.context)?;
    check_camel(spec.schema)?;
    crate::new::check_name(spec.plural).map_err(|err| anyhow::anyhow!("the plural: {err}"))?;
    let package = package_name(dir)?;
    let dialect = Dialect::of(dir)?;
    let context = snake(spec.context);
    let singular = snake(spec.schema);
    let plural = spec.plural;
    if singular == plural {
        bail!("the schema `{}` and the plural `{plural}` make the same name: give the plural as the table's name (e.g. `posts`)", spec.schema);
    }
    let context_file = format!("src/{context}.rs");
    let version = free_version(dir, timestamp);
    let files = [
        format!("migrations/{version}_create_{plural}.sql"),
        format!("src/controllers/{singular}_controller.rs"),
        format!("src/controllers/{singular}_json.rs"),
        format!("tests/{singular}_controller.rs"),
    ];
    // Everything is checked before anything is written.
    for file in &files {
        if dir.join(file).exists() {
            bail!(
                "{file} already exists: `fawkes gen json` ran before for {}, or the name is taken",
                spec.schema
            );
        }
    }
    if table_exists(dir, plural) {
        bail!("a migration in migrations/ creates the table `{plural}` already: choose another plural");
    }
    for field in spec.fields {
        if let Some(table) = &field.table {
            if table != plural && !table_exists(dir, table) {
                bail!(
                    "`{}:references:{table}`: no migration in migrations/ creates the table \
                     `{table}`: generate it first (`fawkes gen json ...`) or write its migration",
                    field.name
                );
            }
        }
    }
    let existing_context = match std::fs::read_to_string(dir.join(&context_file)) {
        Ok(text) => {
            if !text.contains("pub enum Error") || !text.contains("use crate::repo::Repo;") {
                bail!(
                    "{context_file} exists but is not a context `fawkes gen json` made (it has \
                     no `pub enum Error` or does not use `crate::repo::Repo`): choose another context"
                );
            }
            if text.contains(&format!("pub struct {} ", spec.schema))
                || text.contains(&format!("fn list_{plural}("))
            {
                bail!("{context_file} has a {} already: choose another schema", spec.schema);
            }
            Some(text)
        }
        Err(_) => None,
    };
    let router_path = dir.join("src/router.rs");
    let router = std::fs::read_to_string(&router_path).context("cannot read src/router.rs")?;
    let route = format!(
        "resources \"/{plural}\" => crate::controllers::{singular}_controller, except: [new, edit];"
    );
    let Some(router) = insert_before_marker(&router, API_ROUTES_MARKER, &route) else {
        bail!(
            "src/router.rs has no `{API_ROUTES_MARKER}` line to add the route at: add \
             `{route}` to the /api scope yourself"
        );
    };
    let lib_path = dir.join("src/lib.rs");
    let lib = std::fs::read_to_string(&lib_path).context("cannot read src/lib.rs")?;
    if existing_context.is_none() && !lib.contains("pub mod controllers;") {
        bail!("src/lib.rs has no `pub mod controllers;` line to add `pub mod {context};` after");
    }
    let controllers_path = dir.join("src/controllers/mod.rs");
    let controllers =
        std::fs::read_to_string(&controllers_path).context("cannot read src/controllers/mod.rs")?;

    let g = Gen { package: &package, context: &context, spec, singular: &singular, dialect };
    let contents = [g.migration(), g.controller(), g.json_view(), g.test()];
    for (file, text) in files.iter().zip(&contents) {
        crate::new::write(&dir.join(file), text)?;
    }
    let context_text = match existing_context {
        Some(text) => format!("{}\n{}", text.trim_end(), g.context_schema()),
        None => format!("{}{}", g.context_header(), g.context_schema()),
    };
    crate::new::write(&dir.join(&context_file), &context_text)?;
    std::fs::write(&router_path, router).context("cannot write src/router.rs")?;
    let module_line = format!("pub mod {context};");
    if !lib.lines().any(|line| line.trim() == module_line) {
        let lib = lib.replacen(
            "pub mod controllers;",
            &format!("pub mod controllers;\n{module_line}"),
            1,
        );
        std::fs::write(&lib_path, lib).context("cannot write src/lib.rs")?;
    }
    let controllers =
        format!("{controllers}pub mod {singular}_controller;\npub mod {singular}_json;\n");
    std::fs::write(&controllers_path, controllers)
        .context("cannot write src/controllers/mod.rs")?;
    crate::new::format(dir);
    let mut written: Vec<String> = files.to_vec();
    written.extend([
        context_file,
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
    dialect: Dialect,
}

impl Gen<'_> {
    fn columns(&self) -> String {
        let mut columns: Vec<&str> = vec!["id"];
        columns.extend(self.spec.fields.iter().map(|f| f.name.as_str()));
        columns.extend(["inserted_at", "updated_at"]);
        columns.join(", ")
    }

    /// The first field that is not a reference: the one the test checks by name.
    fn first(&self) -> &Field {
        let fields = self.spec.fields;
        fields.iter().find(|f| f.kind != Kind::References).unwrap_or(&fields[0])
    }

    fn references(&self) -> impl Iterator<Item = (&Field, &str)> {
        self.spec.fields.iter().filter_map(|f| Some((f, f.table.as_deref()?)))
    }

    fn migration(&self) -> String {
        let (plural, dialect) = (self.spec.plural, self.dialect);
        let mut sql = format!("CREATE TABLE {plural} (\n    id {},\n", dialect.id_column());
        for field in self.spec.fields {
            let column = match &field.table {
                Some(table) => format!(
                    "    {} {} REFERENCES {table} (id) ON DELETE SET NULL,\n",
                    field.name,
                    field.kind.sql(dialect)
                ),
                None => format!("    {} {} NOT NULL,\n", field.name, field.kind.sql(dialect)),
            };
            sql.push_str(&column);
        }
        let now = dialect.now();
        sql.push_str(&format!(
            "    inserted_at TEXT NOT NULL DEFAULT ({now}),\n    updated_at TEXT NOT NULL DEFAULT ({now})\n);\n"
        ));
        for (field, _) in self.references() {
            sql.push_str(&format!(
                "\nCREATE INDEX {plural}_{0}_index ON {plural} ({0});\n",
                field.name
            ));
        }
        sql
    }

    /// The top of a new context module: its imports and its error.
    fn context_header(&self) -> String {
        let context = self.spec.context;
        format!(
            "//! The {context} context: its schemas and their queries, generated by `fawkes gen json`.\n\n\
             use serde::{{Deserialize, Serialize}};\nuse validator::Validate;\n\n\
             use crate::repo::Repo;\n\n\
             /// What the context's functions can fail with.\n#[derive(Debug)]\npub enum Error {{\n    \
             /// The params break a rule: per field.\n    Invalid(validator::ValidationErrors),\n    \
             /// No row has that id.\n    NotFound,\n    /// The database failed.\n    \
             Database(sqlx::Error),\n}}\n\n\
             impl From<sqlx::Error> for Error {{\n    fn from(err: sqlx::Error) -> Self {{\n        \
             Self::Database(err)\n    }}\n}}\n\n\
             impl From<Error> for fawkes::ActionError {{\n    fn from(err: Error) -> Self {{\n        \
             match err {{\n            Error::Invalid(errors) => errors.into(),\n            \
             Error::NotFound => fawkes::ActionError::not_found(),\n            \
             Error::Database(err) => fawkes::ActionError::internal_from(err),\n        }}\n    }}\n}}\n\n"
        )
    }

    /// A schema's part of the context: its row, its params, its queries.
    fn context_schema(&self) -> String {
        let Json { schema, plural, fields, .. } = self.spec;
        let (singular, dialect) = (self.singular, self.dialect);
        let columns = self.columns();
        let mut out = format!(
            "/// A row of `{plural}`.\n\
             #[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]\n\
             pub struct {schema} {{\n    /// Its id.\n    pub id: i64,\n"
        );
        for f in fields.iter() {
            let (doc, ty) = match &f.table {
                Some(table) => (
                    format!("The row of `{table}` it belongs to, if any."),
                    "Option<i64>".to_owned(),
                ),
                None => (format!("`{}`.", f.name), f.kind.rust().to_owned()),
            };
            out.push_str(&format!("    /// {doc}\n    pub {}: {ty},\n", f.name));
        }
        out.push_str(
            "    /// When it was created (ISO 8601, UTC).\n    pub inserted_at: String,\n    \
             /// When it last changed.\n    pub updated_at: String,\n}\n\n",
        );
        out.push_str(&format!(
            "/// The fields a client sends to create or change a {singular}: every one but a \
             reference is required to create one; a change keeps what it does not send.\n\
             #[derive(Debug, Clone, Default, Deserialize, Validate)]\npub struct {schema}Params {{\n"
        ));
        for f in fields.iter() {
            if let Some(rules) = f.kind.rules() {
                out.push_str(&format!("    #[validate({rules})]\n"));
            } else {
                out.push_str(&format!(
                    "    /// Checked against `{}` when given.\n",
                    f.table.as_deref().unwrap_or_default()
                ));
            }
            out.push_str(&format!("    pub {}: Option<{}>,\n", f.name, f.kind.rust()));
        }
        out.push_str("}\n\n");
        let n = fields.len();
        let binds: String =
            fields.iter().map(|f| format!("        .bind(params.{})\n", f.name)).collect();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let marks: Vec<String> = (1..=n).map(|i| dialect.mark(i)).collect();
        let sets: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{} = {}", f.name, dialect.mark(i + 1)))
            .collect();
        let merge: String = fields
            .iter()
            .map(|f| match f.kind {
                Kind::References => format!("        {0}: params.{0}.or(old.{0}),\n", f.name),
                _ => format!("        {0}: params.{0}.or(Some(old.{0})),\n", f.name),
            })
            .collect();
        let has_references = self.references().next().is_some();
        let check = if has_references {
            format!("    check_{singular}_references(repo, &params).await?;\n")
        } else {
            String::new()
        };
        let (m1, id_mark) = (dialect.mark(1), dialect.mark(n + 1));
        let now = dialect.now().replace('"', "\\\"");
        out.push_str(&format!(
            "/// Every {singular}, oldest first.\n\
             ///\n/// # Errors\n///\n/// When the database fails.\n\
             pub async fn list_{plural}(repo: &Repo) -> Result<Vec<{schema}>, Error> {{\n    \
             let sql = \"SELECT {columns} FROM {plural} ORDER BY id\";\n    \
             Ok(sqlx::query_as(sql).fetch_all(repo.pool()).await?)\n}}\n\n\
             /// The {singular} with `id`.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], or when the database fails.\n\
             pub async fn get_{singular}(repo: &Repo, id: i64) -> Result<{schema}, Error> {{\n    \
             let sql = \"SELECT {columns} FROM {plural} WHERE id = {m1}\";\n    \
             let found = sqlx::query_as(sql).bind(id).fetch_optional(repo.pool()).await?;\n    \
             found.ok_or(Error::NotFound)\n}}\n\n\
             /// Creates a {singular} from `params`.\n\
             ///\n/// # Errors\n///\n/// [`Error::Invalid`], or when the database fails.\n\
             pub async fn create_{singular}(repo: &Repo, params: {schema}Params) -> Result<{schema}, Error> {{\n    \
             params.validate().map_err(Error::Invalid)?;\n{check}    \
             let sql = \"INSERT INTO {plural} ({names}) VALUES ({marks}) RETURNING {columns}\";\n    \
             Ok(sqlx::query_as(sql)\n{binds}        .fetch_one(repo.pool())\n        .await?)\n}}\n\n\
             /// Changes the {singular} with `id`: the fields `params` has, the others kept.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], [`Error::Invalid`], or when the database fails.\n\
             pub async fn update_{singular}(repo: &Repo, id: i64, params: {schema}Params) -> Result<{schema}, Error> {{\n    \
             let old = get_{singular}(repo, id).await?;\n    \
             let params = {schema}Params {{\n{merge}    }};\n    \
             params.validate().map_err(Error::Invalid)?;\n{check}    \
             let sql = \"UPDATE {plural} SET {sets}, updated_at = {now} \
             WHERE id = {id_mark} RETURNING {columns}\";\n    \
             Ok(sqlx::query_as(sql)\n{binds}        .bind(id)\n        .fetch_one(repo.pool())\n        .await?)\n}}\n\n\
             /// Deletes the {singular} with `id`.\n\
             ///\n/// # Errors\n///\n/// [`Error::NotFound`], or when the database fails.\n\
             pub async fn delete_{singular}(repo: &Repo, id: i64) -> Result<(), Error> {{\n    \
             let done = sqlx::query(\"DELETE FROM {plural} WHERE id = {m1}\").bind(id).execute(repo.pool()).await?;\n    \
             if done.rows_affected() == 0 {{\n        return Err(Error::NotFound);\n    }}\n    Ok(())\n}}\n",
            names = names.join(", "),
            marks = marks.join(", "),
            sets = sets.join(", "),
        ));
        if has_references {
            out.push_str(&format!(
                "\n/// Each reference `params` gives names a row that exists: \"does not exist\" \
                 for the field otherwise.\n\
                 async fn check_{singular}_references(repo: &Repo, params: &{schema}Params) -> Result<(), Error> {{\n    \
                 let mut errors = validator::ValidationErrors::new();\n"
            ));
            for (field, table) in self.references() {
                out.push_str(&format!(
                    "    if let Some(id) = params.{0} {{\n        \
                     let found: Option<(i64,)> = sqlx::query_as(\"SELECT id FROM {table} WHERE id = {m1}\")\n            \
                     .bind(id)\n            .fetch_optional(repo.pool())\n            .await?;\n        \
                     if found.is_none() {{\n            \
                     errors.add(\"{0}\", validator::ValidationError::new(\"exists\").with_message(\"does not exist\".into()));\n        \
                     }}\n    }}\n",
                    field.name
                ));
            }
            out.push_str(
                "    if errors.is_empty() {\n        Ok(())\n    } else {\n        \
                 Err(Error::Invalid(errors))\n    }\n}\n",
            );
        }
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
                .filter(|f| f.kind != Kind::References)
                .map(|f| {
                    let (a, b) = f.kind.samples();
                    format!("\"{}\": {}", f.name, if second { b } else { a })
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (create_attrs, update_attrs) = (attrs(false), attrs(true));
        let first = self.first();
        let (first_value, _) = first.kind.samples();
        let bad_value = first.kind.invalid();
        let mut references = String::new();
        for (field, table) in self.references() {
            references.push_str(&format!(
                "\n    // A reference is optional, and must name a row of `{table}` when given.\n    \
                 assert_eq!(created.json()[\"data\"][\"{0}\"], json!(null));\n    \
                 let dangling = app.post(\"/api/{plural}\").json(&json!({{ \"{singular}\": {{ {create_attrs}, \"{0}\": 999_999_999 }} }})).send().await;\n    \
                 dangling.assert_status(422);\n    \
                 assert_eq!(dangling.json()[\"errors\"][\"{0}\"], json!([\"does not exist\"]));\n",
                field.name
            ));
        }
        format!(
            "//! `/api/{plural}`, every action, generated by `fawkes gen json`.\n\n\
             use fawkes::test::ConnTest;\nuse serde_json::json;\n\n\
             async fn app() -> ConnTest {{\n    \
             let url = {package}::repo::test_database_url().await.unwrap();\n    \
             let repo = {package}::repo::Repo::connect(&url).await.unwrap();\n    \
             let clients = fawkes::assets::PhoenixClients::missing();\n    \
             ConnTest::new({package}::AppRouter::new({package}::router::AppState {{ repo, clients }}))\n}}\n\n\
             #[tokio::test]\n\
             async fn every_action_of_{plural}() {{\n    \
             let app = app().await;\n    \
             let list = app.get(\"/api/{plural}\").header(\"accept\", \"application/json\").send().await;\n    \
             list.assert_status(200).assert_json(&json!({{ \"data\": [] }}));\n\n    \
             let created = app.post(\"/api/{plural}\").json(&json!({{ \"{singular}\": {{ {create_attrs} }} }})).send().await;\n    \
             created.assert_status(201);\n    \
             let id = created.json()[\"data\"][\"id\"].as_i64().expect(\"an id\");\n    \
             assert_eq!(created.json()[\"data\"][\"{first}\"], json!({first_value}));\n    \
             assert_eq!(created.header(\"location\"), Some(format!(\"/api/{plural}/{{id}}\").as_str()));\n{references}\n    \
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
    fn fields_are_name_and_a_known_type() {
        let specs = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let fields = parse_fields(&specs(&[
            "title:string",
            "views:integer",
            "at:datetime",
            "user_id:references:users",
        ]))
        .unwrap();
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[1].kind.rust(), "i64");
        assert_eq!(fields[3].kind, Kind::References);
        assert_eq!(fields[3].table.as_deref(), Some("users"));
        for (bad, says) in [
            (vec!["title"], "write name:type"),
            (vec!["title:strin"], "is not a field type"),
            (vec!["Title:string"], "is not a snake_case name"),
            (vec!["id:integer"], "added to every schema"),
            (vec!["a:string", "a:text"], "given twice"),
            (vec!["user_id:references"], "say which table"),
            (vec!["user_id:references:Users"], "the table of"),
            (vec!["user_id:references:users"], "not a reference"),
            (vec![], "at least one field"),
        ] {
            let err = parse_fields(&specs(&bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn each_dialect_binds_and_types_its_own_way() {
        assert_eq!(Dialect::Sqlite.mark(2), "?2");
        assert_eq!(Dialect::Postgres.mark(2), "$2");
        assert_eq!(Kind::Float.sql(Dialect::Postgres), "DOUBLE PRECISION");
        assert_eq!(Kind::References.sql(Dialect::Postgres), "BIGINT");
        assert_eq!(Kind::Integer.sql(Dialect::Sqlite), "INTEGER");
    }
}
