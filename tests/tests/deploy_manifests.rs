//! The example app's deployment files, checked statically: the Kubernetes manifests against
//! each other and against the app's shutdown sequence, the Dockerfile against the manifests.
//! Neither a cluster nor a container engine is needed, so a mistake is caught here rather than
//! in a failed rollout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../example-app/deploy")
}

/// One YAML document and the file it came from.
#[derive(Debug)]
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: a document without `kind`", self.file))
    }

    fn name(&self) -> &str {
        str_at(&self.value, "/metadata/name", &self.file)
    }
}

/// Every document of every `.yaml`/`.yml` file under `deploy/k8s`, in file-name order.
fn manifests() -> Vec<Doc> {
    let dir = deploy_dir().join("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML file in {}", dir.display());
    let mut docs = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(document)
                .unwrap_or_else(|err| panic!("{file}: document {i} is not valid YAML: {err}"));
            // A `---` with nothing after it is an empty document, not a manifest.
            if !value.is_null() {
                docs.push(Doc { file: file.clone(), value });
            }
        }
    }
    docs
}

/// The one document of `kind`.
#[track_caller]
fn only<'a>(docs: &'a [Doc], kind: &str) -> &'a Doc {
    let found: Vec<&Doc> = docs.iter().filter(|doc| doc.kind() == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}, found {}", found.len());
    found[0]
}

#[track_caller]
fn at<'a>(value: &'a Value, pointer: &str, file: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or_else(|| panic!("{file}: `{pointer}` is missing"))
}

#[track_caller]
fn str_at<'a>(value: &'a Value, pointer: &str, file: &str) -> &'a str {
    at(value, pointer, file)
        .as_str()
        .unwrap_or_else(|| panic!("{file}: `{pointer}` is not a string"))
}

#[track_caller]
fn u64_at(value: &Value, pointer: &str, file: &str) -> u64 {
    at(value, pointer, file)
        .as_u64()
        .unwrap_or_else(|| panic!("{file}: `{pointer}` is not a non-negative integer"))
}

/// The Deployment's only container.
#[track_caller]
fn app_container(deployment: &Doc) -> &Value {
    let containers = at(&deployment.value, "/spec/template/spec/containers", &deployment.file);
    let containers = containers.as_array().expect("containers is a list");
    assert_eq!(containers.len(), 1, "{}: one container expected, no sidecars", deployment.file);
    &containers[0]
}

/// The container's one port, as `(name, number)`.
#[track_caller]
fn container_port(container: &Value) -> (Option<&str>, u64) {
    let ports = container["ports"].as_array().expect("the container declares its ports");
    assert_eq!(ports.len(), 1, "the container exposes one port: {ports:?}");
    let port = ports[0]["containerPort"].as_u64().expect("containerPort is a number");
    (ports[0]["name"].as_str(), port)
}

/// Whether `port` (a number, or a port name) designates the container's port.
fn names_container_port(container: &Value, port: &Value) -> bool {
    let (name, number) = container_port(container);
    match port {
        Value::Number(n) => n.as_u64() == Some(number),
        Value::String(s) => name == Some(s.as_str()),
        _ => false,
    }
}

/// A literal `env` value of the container; `None` when unset or taken from elsewhere.
fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|var| var["name"] == name)
        .and_then(|var| var["value"].as_str())
}

#[track_caller]
fn env_secs(container: &Value, name: &str) -> u64 {
    let value = env_value(container, name)
        .unwrap_or_else(|| panic!("the container sets no literal {name}"));
    value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number of seconds"))
}

#[test]
fn every_document_has_the_api_version_of_its_kind() {
    let expected = BTreeMap::from([
        ("Deployment", "apps/v1"),
        ("Service", "v1"),
        ("HorizontalPodAutoscaler", "autoscaling/v2"),
        ("PodDisruptionBudget", "policy/v1"),
        ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
    ]);
    let docs = manifests();
    for doc in &docs {
        let kind = doc.kind();
        let version = str_at(&doc.value, "/apiVersion", &doc.file);
        let want = expected
            .get(kind)
            .unwrap_or_else(|| panic!("{}: unexpected kind {kind}; add it to this test", doc.file));
        assert_eq!(version, *want, "{}: {kind} must use apiVersion {want}", doc.file);
    }
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler"] {
        only(&docs, kind);
    }
}

#[test]
fn probes_point_at_the_health_routes_on_the_container_port() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    let probes = [
        ("livenessProbe", "/healthz", true),
        ("readinessProbe", "/readyz", true),
        // A startup probe is optional; when there is one it must not wait on readiness, which
        // is false for good during a shutdown.
        ("startupProbe", "/healthz", false),
    ];
    for (probe, path, required) in probes {
        let Some(get) = container.get(probe).map(|p| &p["httpGet"]) else {
            assert!(!required, "{}: no {probe}", deployment.file);
            continue;
        };
        assert_eq!(get["path"], path, "{}: {probe} must GET {path}", deployment.file);
        assert!(
            names_container_port(container, &get["port"]),
            "{}: {probe} port {} is not the container port {:?}",
            deployment.file,
            get["port"],
            container_port(container)
        );
    }
}

#[test]
fn the_grace_period_outlasts_the_apps_own_shutdown() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    let drain = env_secs(container, "DRAIN_DELAY_SECS");
    let timeout = env_secs(container, "SHUTDOWN_TIMEOUT_SECS");
    let grace = u64_at(
        &deployment.value,
        "/spec/template/spec/terminationGracePeriodSeconds",
        &deployment.file,
    );
    // The app can take drain + timeout before it starts closing the database; a SIGKILL at
    // exactly that moment would cut requests being answered, so a margin is required.
    assert!(
        grace > drain + timeout,
        "{}: terminationGracePeriodSeconds {grace} must exceed DRAIN_DELAY_SECS {drain} + \
         SHUTDOWN_TIMEOUT_SECS {timeout}",
        deployment.file
    );
    assert!(drain > 0, "a zero drain delay refuses connections the load balancer still sends");

    // Readiness must fail while the listener still accepts: within the drain delay.
    let readiness = &container["readinessProbe"];
    let period = readiness["periodSeconds"].as_u64().unwrap_or(10);
    let failures = readiness["failureThreshold"].as_u64().unwrap_or(3);
    assert!(
        period * failures <= drain,
        "{}: readiness notices a shutdown after {period} s x {failures} failures, later than \
         the {drain} s drain delay",
        deployment.file
    );
}

#[test]
fn the_container_listens_on_every_interface_at_its_declared_port() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    let (_, port) = container_port(container);
    assert_eq!(
        env_value(container, "HOST"),
        Some("0.0.0.0"),
        "{}: HOST must be 0.0.0.0; the app's default, 127.0.0.1, is unreachable from the kubelet",
        deployment.file
    );
    // The app defaults to 4000 when PORT is unset; when set it must match.
    let listens =
        env_value(container, "PORT").map_or(4000, |p| p.parse().expect("PORT is a number"));
    assert_eq!(listens, port, "{}: PORT differs from containerPort", deployment.file);
    assert_eq!(env_value(container, "LOG_FORMAT"), Some("json"), "log collectors want JSON lines");
}

#[test]
fn the_secret_key_base_comes_from_a_secret_and_production_requires_it() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    // In production the app refuses to start without the secret instead of making one up per
    // pod, which would make every replica refuse the others' cookies and tokens.
    assert_eq!(env_value(container, "FAWKES_ENV"), Some("prod"), "{}", deployment.file);
    let vars = container["env"].as_array().expect("the container sets env");
    let found: Vec<&Value> = vars.iter().filter(|v| v["name"] == "SECRET_KEY_BASE").collect();
    assert_eq!(found.len(), 1, "{}: set SECRET_KEY_BASE once", deployment.file);
    let var = found[0];
    assert!(var.get("value").is_none(), "{}: a secret is never a literal", deployment.file);
    let secret = at(var, "/valueFrom/secretKeyRef", &deployment.file);
    for field in ["name", "key"] {
        let value = secret[field].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{}: secretKeyRef without a {field}", deployment.file);
    }
    assert_ne!(
        secret["optional"],
        Value::Bool(true),
        "{}: an optional secret would start production pods that cannot start",
        deployment.file
    );
    // The value itself stays out of the repository.
    assert!(
        docs.iter().all(|doc| doc.kind() != "Secret"),
        "a Secret manifest would commit the key; create it with kubectl instead"
    );

    let stages = dockerfile();
    let env = runtime_stage(&stages).env();
    assert_eq!(env.get("FAWKES_ENV"), Some(&"prod"), "the image defaults to production");
    assert!(!env.contains_key("SECRET_KEY_BASE"), "no secret baked into the image");
}

#[test]
fn replicas_can_share_one_redis_and_still_start_without_it() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    let vars = container["env"].as_array().expect("the container sets env");
    let found: Vec<&Value> = vars.iter().filter(|v| v["name"] == "REDIS_URL").collect();
    assert_eq!(found.len(), 1, "{}: set REDIS_URL once", deployment.file);
    // A URL may carry a password: from a Secret, never a literal.
    assert!(found[0].get("value").is_none(), "{}: REDIS_URL is not a literal", deployment.file);
    let secret = at(found[0], "/valueFrom/secretKeyRef", &deployment.file);
    assert!(secret["name"].as_str().is_some_and(|n| !n.is_empty()), "{}", deployment.file);
    // Without Redis each pod is a cluster of one, which is a working (if smaller) app.
    assert_eq!(secret["optional"], Value::Bool(true), "{}", deployment.file);
    let replicas = u64_at(&deployment.value, "/spec/replicas", &deployment.file);
    assert!(replicas > 1, "{}: replicas to share it", deployment.file);
}

#[test]
fn the_service_targets_the_container_port_of_the_deployments_pods() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let service = only(&docs, "Service");
    let container = app_container(deployment);
    let ports = at(&service.value, "/spec/ports", &service.file).as_array().expect("ports list");
    assert!(!ports.is_empty(), "{}: no ports", service.file);
    for port in ports {
        assert!(
            names_container_port(container, &port["targetPort"]),
            "{}: targetPort {} is not the container port {:?}",
            service.file,
            port["targetPort"],
            container_port(container)
        );
    }
    assert_eq!(ports[0]["port"], 80, "{}: the Service answers on port 80", service.file);

    let selector = at(&service.value, "/spec/selector", &service.file);
    let labels = at(&deployment.value, "/spec/template/metadata/labels", &deployment.file);
    assert_selects(selector, labels, &service.file);
    let deployment_selector = at(&deployment.value, "/spec/selector/matchLabels", &deployment.file);
    assert_selects(deployment_selector, labels, &deployment.file);
}

#[track_caller]
fn assert_selects(selector: &Value, labels: &Value, file: &str) {
    let selector = selector.as_object().expect("a selector is a map");
    assert!(!selector.is_empty(), "{file}: an empty selector matches every pod");
    for (key, value) in selector {
        assert_eq!(&labels[key], value, "{file}: selector {key}={value} matches no pod label");
    }
}

#[test]
fn the_autoscaler_scales_the_deployment_on_cpu() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let hpa = only(&docs, "HorizontalPodAutoscaler");
    let target = at(&hpa.value, "/spec/scaleTargetRef", &hpa.file);
    assert_eq!(target["apiVersion"], "apps/v1", "{}: scaleTargetRef.apiVersion", hpa.file);
    assert_eq!(target["kind"], "Deployment", "{}: scaleTargetRef.kind", hpa.file);
    assert_eq!(
        target["name"],
        deployment.name(),
        "{}: scaleTargetRef.name must be the Deployment's name",
        hpa.file
    );

    let min = u64_at(&hpa.value, "/spec/minReplicas", &hpa.file);
    let max = u64_at(&hpa.value, "/spec/maxReplicas", &hpa.file);
    let replicas = u64_at(&deployment.value, "/spec/replicas", &deployment.file);
    assert!(min <= replicas && replicas <= max, "replicas {replicas} outside [{min}, {max}]");

    let metrics = at(&hpa.value, "/spec/metrics", &hpa.file).as_array().expect("metrics list");
    let cpu = metrics
        .iter()
        .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
        .unwrap_or_else(|| panic!("{}: no CPU resource metric", hpa.file));
    let utilization = &cpu["resource"]["target"];
    assert_eq!(utilization["type"], "Utilization", "{}: CPU target type", hpa.file);
    let percent = utilization["averageUtilization"].as_u64().expect("averageUtilization");
    assert!((1..=100).contains(&percent), "{}: averageUtilization {percent}", hpa.file);

    // Utilisation is a fraction of the request: without one the HPA cannot compute it.
    let container = app_container(deployment);
    assert!(
        container.pointer("/resources/requests/cpu").is_some(),
        "{}: the CPU autoscaler needs a CPU request",
        deployment.file
    );
    assert!(
        container.pointer("/resources/limits/memory").is_some(),
        "{}: a memory limit keeps one pod from starving its node",
        deployment.file
    );
}

#[test]
fn rolling_updates_never_drop_below_the_replica_count() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let strategy = at(&deployment.value, "/spec/strategy", &deployment.file);
    assert_eq!(strategy["type"], "RollingUpdate", "{}: strategy type", deployment.file);
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 0, "{}", deployment.file);
    assert_eq!(strategy["rollingUpdate"]["maxSurge"], 1, "{}", deployment.file);
    assert!(u64_at(&deployment.value, "/spec/replicas", &deployment.file) >= 2, "one pod is no HA");
}

#[test]
fn pods_run_as_non_root_with_a_read_only_root_and_a_writable_data_dir() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let pod = at(&deployment.value, "/spec/template/spec", &deployment.file);
    let container = app_container(deployment);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{}: runAsNonRoot", deployment.file);
    let uid = pod["securityContext"]["runAsUser"].as_u64().expect("runAsUser is set");
    assert_ne!(uid, 0, "{}: runAsUser 0 is root", deployment.file);
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false, "{}", deployment.file);
    assert_eq!(security["readOnlyRootFilesystem"], true, "{}", deployment.file);

    // With a read-only root, the default SQLite file needs a writable working directory.
    let workdir = runtime_stage(&dockerfile()).last("WORKDIR").expect("runtime WORKDIR").to_owned();
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.iter().find(|m| m["mountPath"] == workdir.as_str()))
        .unwrap_or_else(|| panic!("{}: nothing is mounted at WORKDIR {workdir}", deployment.file));
    let volume = pod["volumes"]
        .as_array()
        .and_then(|volumes| volumes.iter().find(|v| v["name"] == mount["name"]))
        .unwrap_or_else(|| panic!("{}: no volume named {}", deployment.file, mount["name"]));
    assert!(volume.get("emptyDir").is_some(), "{}: {workdir} is an emptyDir", deployment.file);
}

#[test]
fn prometheus_is_told_where_to_scrape() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let annotations =
        at(&deployment.value, "/spec/template/metadata/annotations", &deployment.file);
    let (_, port) = container_port(app_container(deployment));
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{}", deployment.file);
    assert_eq!(annotations["prometheus.io/path"], "/metrics", "{}", deployment.file);
    assert_eq!(annotations["prometheus.io/port"], port.to_string(), "{}", deployment.file);
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let docs = manifests();
    let kustomization = only(&docs, "Kustomization");
    let listed: Vec<&str> = at(&kustomization.value, "/resources", &kustomization.file)
        .as_array()
        .expect("resources list")
        .iter()
        .map(|r| r.as_str().expect("a resource is a path"))
        .collect();
    for doc in docs.iter().filter(|doc| doc.kind() != "Kustomization") {
        assert!(listed.contains(&doc.file.as_str()), "{} is missing from resources", doc.file);
    }
    for file in listed {
        assert!(deploy_dir().join("k8s").join(file).is_file(), "resources lists {file}: no file");
    }
}

// The Dockerfile, read instruction by instruction.

/// One instruction: its keyword in upper case and the rest of its (joined) lines.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A build stage: from `FROM <image> [AS <name>]` to the next `FROM`.
#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions.iter().filter(move |i| i.keyword == keyword).map(|i| i.args.as_str())
    }

    /// The last instruction of `keyword`: the one in effect.
    fn last(&self, keyword: &str) -> Option<&str> {
        self.instructions.iter().rev().find(|i| i.keyword == keyword).map(|i| i.args.as_str())
    }

    /// The `ENV` variables the stage sets (`KEY=value` form).
    fn env(&self) -> BTreeMap<&str, &str> {
        self.all("ENV")
            .flat_map(str::split_whitespace)
            .map(|pair| {
                pair.split_once('=').unwrap_or_else(|| panic!("ENV {pair:?}: use KEY=value"))
            })
            .collect()
    }
}

fn dockerfile() -> Vec<Stage> {
    let path = deploy_dir().join("Dockerfile");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    // Comment lines are dropped even inside a continuation, as Docker does; a trailing
    // backslash joins a line with the next.
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "the Dockerfile ends inside a continuation");

    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_owned());
        if keyword == "FROM" {
            let words: Vec<&str> =
                args.split_whitespace().filter(|w| !w.starts_with("--platform")).collect();
            let name = match words.as_slice() {
                [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                _ => panic!("FROM {args:?}: expected `FROM image [AS name]`"),
            };
            stages.push(Stage { image: words[0].to_owned(), name, instructions: Vec::new() });
        } else {
            let stage = stages.last_mut().unwrap_or_else(|| panic!("{keyword} before any FROM"));
            stage.instructions.push(Instruction { keyword, args });
        }
    }
    stages
}

/// The final stage: what the image is.
fn runtime_stage(stages: &[Stage]) -> &Stage {
    stages.last().expect("the Dockerfile has a FROM")
}

#[test]
fn the_dockerfile_builds_the_app_in_release_in_a_builder_stage() {
    let stages = dockerfile();
    assert!(stages.len() >= 2, "a builder stage and a runtime stage, found {}", stages.len());
    let builder = &stages[0];
    assert!(
        builder.image.starts_with("rust:"),
        "the builder starts from rust:, not {}",
        builder.image
    );
    let builder_name = builder.name.as_deref().expect("the builder stage is named (`AS builder`)");
    let build = builder
        .all("RUN")
        .find(|run| run.contains("cargo build"))
        .expect("the builder stage runs `cargo build`");
    let words: Vec<&str> = build.split_whitespace().collect();
    assert!(words.contains(&"--release"), "cargo build without --release: {build}");
    assert!(
        words.windows(2).any(|w| matches!(w, ["-p" | "--package", "example-app"])),
        "cargo build does not select example-app: {build}"
    );
    assert!(words.contains(&"--locked"), "the image must build from Cargo.lock: {build}");
    assert!(build.contains("--mount=type=cache"), "cargo's caches are mounted: {build}");

    let runtime = runtime_stage(&stages);
    let copies_binary = runtime.all("COPY").any(|copy| {
        copy.contains(&format!("--from={builder_name}")) && copy.contains("example-app")
    });
    assert!(copies_binary, "the runtime stage copies the binary from {builder_name}");

    // The pages' assets are served from disk: the image carries them where ASSETS_DIR points.
    let assets_dir = *runtime.env().get("ASSETS_DIR").expect("the image sets ASSETS_DIR");
    let copies_assets = runtime.all("COPY").any(|copy| {
        let words: Vec<&str> = copy.split_whitespace().collect();
        copy.contains(&format!("--from={builder_name}"))
            && words.last() == Some(&assets_dir)
            && words.iter().any(|w| w.ends_with("example-app/assets"))
    });
    assert!(copies_assets, "the runtime stage copies example-app/assets to {assets_dir}");

    // The live pages' clients: installed from the lockfile, copied where NODE_MODULES_DIR points.
    let node_modules =
        *runtime.env().get("NODE_MODULES_DIR").expect("the image sets NODE_MODULES_DIR");
    let clients = stages
        .iter()
        .find(|stage| stage.all("RUN").any(|run| run.contains("npm ci")))
        .expect("a stage runs `npm ci` (from the lockfile)");
    let clients_name = clients.name.as_deref().expect("the npm stage is named");
    for package in ["phoenix", "phoenix_live_view"] {
        let target = format!("{node_modules}/{package}/priv/static");
        let copied = runtime.all("COPY").any(|copy| {
            copy.contains(&format!("--from={clients_name}"))
                && copy.split_whitespace().last() == Some(target.as_str())
        });
        assert!(copied, "the runtime stage copies {package}'s priv/static to {target}");
    }
}

#[test]
fn the_runtime_image_is_slim_and_runs_as_the_pods_non_root_user() {
    let stages = dockerfile();
    let runtime = runtime_stage(&stages);
    assert!(
        runtime.image.starts_with("debian:") && runtime.image.contains("slim"),
        "the runtime starts from a slim Debian, not {}",
        runtime.image
    );
    assert!(
        runtime.all("RUN").any(|run| run.contains("ca-certificates")),
        "the runtime installs ca-certificates"
    );
    let user = runtime.last("USER").expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(!matches!(uid, "root" | "0"), "USER {user} is root");
    // A numeric uid lets the kubelet enforce runAsNonRoot; it must be the pods' runAsUser.
    let uid: u64 = uid.parse().unwrap_or_else(|_| panic!("USER {user}: use a numeric uid"));
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let pod_uid = u64_at(
        &deployment.value,
        "/spec/template/spec/securityContext/runAsUser",
        &deployment.file,
    );
    assert_eq!(uid, pod_uid, "USER in the Dockerfile and runAsUser in {}", deployment.file);
    assert!(runtime.last("HEALTHCHECK").is_none(), "Kubernetes probes the app; no HEALTHCHECK");
}

#[test]
fn the_image_exposes_and_listens_on_the_port_the_manifests_use() {
    let stages = dockerfile();
    let runtime = runtime_stage(&stages);
    let docs = manifests();
    let (_, port) = container_port(app_container(only(&docs, "Deployment")));
    let exposed: Vec<u64> = runtime
        .all("EXPOSE")
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp").parse().unwrap_or_else(|_| panic!("EXPOSE {p}")))
        .collect();
    assert_eq!(exposed, [port], "EXPOSE must be the containerPort of the Deployment");

    let env = runtime.env();
    assert_eq!(env.get("HOST"), Some(&"0.0.0.0"), "ENV HOST=0.0.0.0, else unreachable");
    assert_eq!(env.get("LOG_FORMAT"), Some(&"json"), "ENV LOG_FORMAT=json");
    if let Some(listens) = env.get("PORT") {
        assert_eq!(listens.parse::<u64>().ok(), Some(port), "ENV PORT and EXPOSE differ");
    }

    let entrypoint = runtime.last("ENTRYPOINT").expect("the runtime stage has an ENTRYPOINT");
    // The exec form makes the binary PID 1, so SIGTERM reaches it and starts the drain; the
    // shell form would hand it to `sh`, which does not forward it.
    let argv: Vec<String> = serde_json::from_str(entrypoint)
        .unwrap_or_else(|_| panic!("ENTRYPOINT {entrypoint}: use the exec (JSON) form"));
    assert!(argv[0].ends_with("/example-app"), "ENTRYPOINT runs {argv:?}, not the app");
}

#[test]
fn the_trusted_proxies_are_networks_the_app_accepts() {
    let docs = manifests();
    let deployment = only(&docs, "Deployment");
    let container = app_container(deployment);
    let proxies = env_value(container, "TRUSTED_PROXIES").expect("the ingress is trusted");
    let parsed = fawkes::security::TrustedProxies::parse(proxies)
        .unwrap_or_else(|err| panic!("{}: TRUSTED_PROXIES: {err}", deployment.file));
    assert!(!parsed.is_empty(), "{}", deployment.file);
}
