//! What deploys kevents, checked the way the tools that read it do:
//! - `docker-compose.yml` through `docker-compose config` (validation without an engine):
//!   every service the README names, each with a health check, the repo files it mounts
//!   present, each stage's config loading and validating with the compose environment;
//! - the `Dockerfile`'s structure (multi-stage, non-root, the binary copied);
//! - `deploy/config/*.yaml`, the reference configs, naming every field of the config structs;
//! - every kustomize overlay in `deploy/overlays/` rendered by `kubectl kustomize`, each
//!   object deserialized into its k8s-openapi type and serialized back with nothing lost
//!   (an unknown or misspelled field fails), then the properties the manifests promise:
//!   non-root locked-down pods, probes and scrape annotations on the port the config
//!   listens on, configs that load and validate with the pod's environment, Secrets
//!   referenced by name and mounted where the config reads them, collector RBAC exactly as
//!   small as the calls it makes.
//!
//! `KEVENTS_KUBECTL=/path/to/kubectl` picks the kubectl (e.g. Debian 12's 1.20, whose
//! kustomize is v2.0.3: the manifests are written for both). Without any kubectl the
//! overlay test says so loudly and passes; `scripts/install-deps` installs one.

mod stage_config;

use stage_config::{key_paths, listen_of, yaml_file, Stage};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::serde::de::DeserializeOwned;
use k8s_openapi::serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ is in the workspace").to_path_buf()
}

#[test]
fn reference_configs_name_every_field_and_validate() {
    for stage in Stage::ALL {
        let path = repo().join(format!("deploy/config/{}.yaml", stage.name()));
        stage.load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (mut wanted, mut written) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&stage.defaults(), "", &mut wanted);
        key_paths(&yaml_file(&path), "", &mut written);
        let missing: Vec<_> = wanted.difference(&written).collect();
        assert!(
            missing.is_empty(),
            "{} documents every field of the {} config (the CLI help points there); missing: {missing:?}",
            path.display(),
            stage.name()
        );
        // The kustomize bases' configs (the overlays replace them, so the overlay test
        // does not see them), with the namespace the collector's pod supplies.
        let base = repo().join(format!("deploy/base/{0}/{0}.yaml", stage.name()));
        let env = [("KEVENTS__LEADER_ELECTION__NAMESPACE".to_string(), "kevents".to_string())];
        let env = if stage == Stage::Collector { &env[..] } else { &[] };
        let cfg = stage.load(&base, env).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
        assert!(listen_of(&cfg).ip().is_unspecified(), "{}: pods listen on 0.0.0.0", base.display());
    }
}

// ---------------------------------------------------------------- docker-compose

fn env_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect())
        .unwrap_or_default()
}

/// `source:target[:mode]` of a service's volumes, as `docker-compose config` prints them.
fn volumes(svc: &Value) -> Vec<(String, String)> {
    svc["volumes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    let s = v.as_str().expect("1.29 prints volumes as strings");
                    let mut it = s.split(':');
                    (it.next().unwrap().to_string(), it.next().unwrap_or_default().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_validates_and_wires_every_service() {
    let root = repo();
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker-compose ({e}); scripts/install-deps installs it"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "docker-compose config failed:\n{stderr}");
    let doc: Value = serde_norway::from_slice(&out.stdout).expect("docker-compose config prints YAML");
    let services = doc["services"].as_object().expect("services");

    for name in ["kafka", "clickhouse", "grafana", "collector", "processor", "sink"] {
        let svc = services.get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"));
        let test = svc["healthcheck"]["test"].as_array().unwrap_or_else(|| panic!("{name} has no healthcheck"));
        assert!(test.len() >= 2 && test[0] != "NONE", "{name}: healthcheck {test:?}");
        // Every file or directory it mounts from the repository exists.
        for (src, dst) in volumes(svc) {
            if Path::new(&src).starts_with(&root) {
                assert!(Path::new(&src).exists(), "{name} mounts {src} (at {dst}), which does not exist");
            }
        }
    }

    let kafka = &services["kafka"];
    assert!(kafka["image"].as_str().unwrap().starts_with("apache/kafka:"), "official Apache Kafka image");
    let kenv = env_map(&kafka["environment"]);
    assert!(kenv["KAFKA_PROCESS_ROLES"].contains("controller") && kenv["KAFKA_PROCESS_ROLES"].contains("broker"), "KRaft, one node");
    assert!(!kenv.contains_key("KAFKA_ZOOKEEPER_CONNECT"), "no ZooKeeper");
    assert!(services["clickhouse"]["image"].as_str().unwrap().starts_with("clickhouse/clickhouse-server:"));

    // Grafana: the official ClickHouse plugin, provisioning and dashboards from the repo,
    // mounted where the dashboards provider looks.
    let grafana = &services["grafana"];
    assert!(env_map(&grafana["environment"])["GF_INSTALL_PLUGINS"].contains("grafana-clickhouse-datasource"));
    let gvols: BTreeMap<String, String> = volumes(grafana).into_iter().collect();
    let prov_dir = root.join("grafana/provisioning");
    assert_eq!(gvols.get(prov_dir.to_str().unwrap()).map(String::as_str), Some("/etc/grafana/provisioning"));
    let provider = yaml_file(&prov_dir.join("dashboards/kevents.yaml"));
    let dash_path = provider["providers"][0]["options"]["path"].as_str().expect("provider path");
    assert_eq!(gvols.get(root.join("grafana/dashboards").to_str().unwrap()).map(String::as_str), Some(dash_path));
    assert!(depends_healthy(grafana, "clickhouse"));

    let sink_db = Stage::Sink.load(&root.join("deploy/config/sink.yaml"), &[]).unwrap()["clickhouse"]["database"].clone();
    let ds = yaml_file(&prov_dir.join("datasources/kevents.yaml"));
    let ds = &ds["datasources"][0];
    assert_eq!(ds["type"], "grafana-clickhouse-datasource");
    assert_eq!(ds["uid"], "kevents-clickhouse", "the dashboards' datasource variable defaults to this uid");
    assert_eq!(ds["jsonData"]["defaultDatabase"], sink_db, "dashboards name tables without a database");

    for stage in Stage::ALL {
        let name = stage.name();
        let svc = &services[name];
        assert_eq!(svc["build"]["context"].as_str(), root.to_str(), "{name} is built from the repo");
        assert!(root.join(svc["build"]["dockerfile"].as_str().unwrap()).is_file());
        assert_eq!(svc["user"], "10001:10001", "{name} runs as the image's non-root user");
        assert_eq!(svc["read_only"], true, "{name}: read-only root filesystem");
        let cmd: Vec<&str> = svc["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(&cmd[..2], &[name, "--config"], "{name}: command {cmd:?}");
        let src = volumes(svc)
            .into_iter()
            .find(|(_, dst)| dst == cmd[2])
            .unwrap_or_else(|| panic!("{name}: nothing is mounted at its --config {}", cmd[2]))
            .0;
        assert_eq!(Path::new(&src), root.join(format!("deploy/config/{name}.yaml")), "{name} mounts its repo config");
        let env: Vec<(String, String)> = env_map(&svc["environment"]).into_iter().collect();
        let cfg = stage.load(Path::new(&src), &env).unwrap_or_else(|e| panic!("{name} with the compose environment: {e}"));
        let listen = listen_of(&cfg);
        assert!(listen.ip().is_unspecified(), "{name} must listen on 0.0.0.0 in a container, not {listen}");
        let probe = svc["healthcheck"]["test"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join(" ");
        assert!(probe.contains("/healthz") && probe.contains(&format!("/{}", listen.port())), "{name}: healthcheck {probe}");
        assert!(depends_healthy(svc, "kafka"), "{name} waits for a healthy Kafka");
        if stage == Stage::Sink {
            assert!(depends_healthy(svc, "clickhouse"), "the sink waits for a healthy ClickHouse");
            assert_eq!(cfg["clickhouse"]["url"], "http://clickhouse:8123");
        }
        assert_eq!(cfg["kafka"]["brokers"], "kafka:9092", "{name} reaches Kafka by its service name");
    }
}

fn depends_healthy(svc: &Value, on: &str) -> bool {
    svc["depends_on"][on]["condition"] == "service_healthy"
}

// ---------------------------------------------------------------- Dockerfile

#[test]
fn dockerfile_is_multistage_non_root_and_ships_the_binary() {
    let root = repo();
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap().replace("\\\n", " ");
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let froms: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage build");
    assert!(lines[froms[0]].starts_with("FROM rust:1-bookworm AS "), "{}", lines[froms[0]]);
    let build_stage = lines[froms[0]].rsplit(' ').next().unwrap();
    let last = *froms.last().unwrap();
    assert!(lines[last].starts_with("FROM debian:bookworm-slim"), "{}", lines[last]);
    let (build, runtime) = (&lines[froms[0]..last], &lines[last..]);
    let build_text = build.join("\n");
    assert!(build_text.contains("cargo build --release") && build_text.contains("-p kevents"), "builds the kevents binary");
    // What librdkafka's build needs, as scripts/install-deps installs it for the tests.
    for pkg in ["cmake", "g++", "libssl-dev", "libsasl2-dev", "libcurl4-openssl-dev"] {
        assert!(build_text.contains(pkg), "the build stage installs {pkg}");
    }
    let runtime_text = runtime.join("\n");
    assert!(runtime_text.contains("libssl3") && runtime_text.contains("ca-certificates"), "runtime libraries");
    assert!(!runtime_text.contains("-dev"), "no build packages in the runtime image");
    assert!(
        runtime.iter().any(|l| l.starts_with(&format!("COPY --from={build_stage} ")) && l.ends_with("/usr/local/bin/kevents")),
        "the binary is copied from the build stage"
    );
    let user = runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("USER in the runtime stage");
    let uid: u32 = user.split(':').next().unwrap().parse().expect("numeric USER (runAsNonRoot can check it)");
    assert_ne!(uid, 0, "non-root");
    assert_eq!(runtime.iter().rev().find(|l| l.starts_with("ENTRYPOINT")), Some(&r#"ENTRYPOINT ["kevents"]"#));
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"), "build output stays out of the context");
}

// ---------------------------------------------------------------- kustomize overlays

/// One overlay's objects, each already checked against its k8s-openapi type.
#[derive(Default)]
struct Objects {
    overlay: String,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    pdbs: Vec<PodDisruptionBudget>,
    hpas: Vec<HorizontalPodAutoscaler>,
}

impl Objects {
    fn count(&self) -> usize {
        self.deployments.len()
            + self.services.len()
            + self.service_accounts.len()
            + self.config_maps.len()
            + self.roles.len()
            + self.role_bindings.len()
            + self.cluster_roles.len()
            + self.cluster_role_bindings.len()
            + self.pdbs.len()
            + self.hpas.len()
    }
}

/// Drop nulls and empty maps/lists: the typed form omits them, and they carry nothing.
fn prune(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), prune(v)))
                .filter(|(_, v)| !(v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) || v.as_array().is_some_and(|a| a.is_empty())))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(prune).collect()),
        other => other.clone(),
    }
}

fn first_diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).collect::<BTreeSet<_>>().into_iter().find_map(|k| {
            let p = format!("{path}.{k}");
            match (x.get(k), y.get(k)) {
                (Some(l), Some(r)) => first_diff(l, r, &p),
                (Some(_), None) => Some(format!("{p}: not a field of the type (unknown or misspelled)")),
                (None, _) => Some(format!("{p}: added by the type")),
            }
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (l, r))| first_diff(l, r, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}

/// Deserialize into the k8s-openapi type (which checks apiVersion and kind) and require
/// that serializing it back gives the same document: nothing unknown was dropped.
fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let name = format!("{}/{}", doc["kind"].as_str().unwrap_or("?"), doc["metadata"]["name"].as_str().unwrap_or("?"));
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{name}: not a valid object: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(d) = first_diff(&prune(doc), &prune(&back), "") {
        panic!("{name}: does not match the Kubernetes schema: {d}");
    }
    typed
}

/// `$KEVENTS_KUBECTL` (which must work), else `kubectl` from PATH if there is one.
fn kubectl() -> Option<String> {
    let works = |bin: &str| Command::new(bin).args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    match std::env::var("KEVENTS_KUBECTL") {
        Ok(bin) if works(&bin) => Some(bin),
        Ok(bin) => panic!("KEVENTS_KUBECTL={bin} does not run `version --client`"),
        Err(_) => works("kubectl").then(|| "kubectl".to_string()),
    }
}

fn render(kubectl: &str, dir: &Path) -> Objects {
    let out = Command::new(kubectl).arg("kustomize").arg(dir).output().expect("run kubectl");
    assert!(out.status.success(), "kubectl kustomize {}:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut objs = Objects { overlay: dir.file_name().unwrap().to_string_lossy().into_owned(), ..Default::default() };
    for de in serde_norway::Deserializer::from_str(&text) {
        let doc = Value::deserialize(de).expect("kustomize prints YAML");
        if doc.is_null() {
            continue;
        }
        match (doc["apiVersion"].as_str().unwrap_or(""), doc["kind"].as_str().unwrap_or("")) {
            ("apps/v1", "Deployment") => objs.deployments.push(strict(&doc)),
            ("v1", "Service") => objs.services.push(strict(&doc)),
            ("v1", "ServiceAccount") => objs.service_accounts.push(strict(&doc)),
            ("v1", "ConfigMap") => objs.config_maps.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "Role") => objs.roles.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => objs.role_bindings.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => objs.cluster_roles.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => objs.cluster_role_bindings.push(strict(&doc)),
            ("policy/v1", "PodDisruptionBudget") => objs.pdbs.push(strict(&doc)),
            ("autoscaling/v2", "HorizontalPodAutoscaler") => objs.hpas.push(strict(&doc)),
            ("v1", "Secret") => panic!("{}: ships a Secret; reference Secrets by name only", objs.overlay),
            (v, k) => panic!("{}: unexpected object {v} {k}: add its type to this test", objs.overlay),
        }
    }
    objs
}

/// Every overlay in deploy/overlays, rendered once for all the tests below; `None`
/// (after a loud message) when there is no kubectl at all.
fn rendered() -> Option<&'static [Objects]> {
    static RENDERED: OnceLock<Option<Vec<Objects>>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            let Some(kubectl) = kubectl() else {
                eprintln!("\n!!!!!! SKIPPED: no kubectl on PATH: deploy/ overlays NOT rendered or validated. scripts/install-deps installs one. !!!!!!\n");
                return None;
            };
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/overlays"))
                .expect("deploy/overlays")
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("kustomization.yaml").is_file())
                .collect();
            dirs.sort();
            let all: Vec<Objects> = dirs.iter().map(|d| render(&kubectl, d)).collect();
            let n: usize = all.iter().map(Objects::count).sum();
            eprintln!("rendered {} overlays with {kubectl}: {n} objects, all schema-valid", all.len());
            Some(all)
        })
        .as_deref()
}

fn stage_of(d: &Deployment) -> Stage {
    let c = &pod(d).containers[0];
    Stage::from_name(c.args.as_ref().and_then(|a| a.first()).expect("args name the stage"))
}

fn pod(d: &Deployment) -> &PodSpec {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn every_overlay_renders_schema_valid_objects() {
    let Some(all) = rendered() else { return };
    let names: BTreeSet<&str> = all.iter().map(|o| o.overlay.as_str()).collect();
    assert!(names.contains("collector") && names.contains("central"), "overlays: {names:?}");
    let stages: BTreeSet<&str> = all.iter().flat_map(|o| o.deployments.iter().map(|d| stage_of(d).name())).collect();
    assert_eq!(stages, Stage::ALL.iter().map(|s| s.name()).collect(), "every stage is deployed by some overlay");
}

/// The container's environment as the process sees it: literal values, the pod's own
/// name and namespace from the downward API, a stub for Secret-backed variables.
fn container_env(c: &Container, namespace: &str) -> Vec<(String, String)> {
    c.env
        .iter()
        .flatten()
        .map(|e| {
            let v = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                    Some("metadata.namespace") => namespace.to_string(),
                    Some("metadata.name") => "kevents-pod-0".to_string(),
                    Some(other) => panic!("{}: unexpected fieldRef {other}", e.name),
                    None if from.secret_key_ref.is_some() => "stub-secret-value".to_string(),
                    None => panic!("{}: unexpected valueFrom", e.name),
                },
                (None, None) => String::new(),
            };
            (e.name.clone(), v)
        })
        .collect()
}

/// Load the config the container's `--config` points at, from the ConfigMap mounted there.
fn pod_config(objs: &Objects, d: &Deployment, stage: Stage) -> Value {
    let ns = d.metadata.namespace.as_deref().expect("overlays set a namespace");
    let spec = pod(d);
    let c = &spec.containers[0];
    let args = c.args.as_ref().unwrap();
    assert_eq!(&args[1..2], &["--config".to_string()], "{}: args {args:?}", objs.overlay);
    let path = Path::new(&args[2]);
    let (dir, file) = (path.parent().unwrap(), path.file_name().unwrap().to_str().unwrap());
    let mount = c.volume_mounts.iter().flatten().find(|m| Path::new(&m.mount_path) == dir).expect("config mount");
    let vol = spec.volumes.iter().flatten().find(|v| v.name == mount.name).expect("config volume");
    let cm_name = &vol.config_map.as_ref().expect("config comes from a ConfigMap").name;
    let cm = objs.config_maps.iter().find(|m| m.metadata.name.as_ref() == Some(cm_name)).expect("the ConfigMap is rendered");
    let text = cm.data.as_ref().and_then(|d| d.get(file)).unwrap_or_else(|| panic!("{cm_name} has no {file}"));
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join(file);
    std::fs::write(&f, text).unwrap();
    stage
        .load(&f, &container_env(c, ns))
        .unwrap_or_else(|e| panic!("{}: {cm_name}/{file} with the pod's environment: {e}", objs.overlay))
}

fn all_files(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v.as_str() {
                    Some(s) if k.ends_with("_file") => out.push(s.to_string()),
                    _ => all_files(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| all_files(v, out)),
        _ => {}
    }
}

#[test]
fn pods_are_locked_down_probed_scraped_and_configured() {
    let Some(all) = rendered() else { return };
    for objs in all {
        for d in &objs.deployments {
            let stage = stage_of(d);
            let what = format!("{}: {}", objs.overlay, d.metadata.name.as_deref().unwrap());
            let spec = pod(d);
            assert_eq!(spec.containers.len(), 1, "{what}");
            let psc = spec.security_context.as_ref().expect("pod securityContext");
            assert_eq!(psc.run_as_non_root, Some(true), "{what}");
            assert!(psc.run_as_user.is_some_and(|u| u != 0), "{what}: runAsUser");
            assert_eq!(psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"), "{what}");
            let c = &spec.containers[0];
            let sc = c.security_context.as_ref().expect("container securityContext");
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
            let caps = sc.capabilities.as_ref().expect("capabilities");
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{what}");
            assert!(caps.add.as_ref().is_none_or(|a| a.is_empty()), "{what}: adds capabilities");
            let res = c.resources.as_ref().expect("resources");
            for (kind, m) in [("requests", &res.requests), ("limits", &res.limits)] {
                let m = m.as_ref().unwrap_or_else(|| panic!("{what}: no {kind}"));
                assert!(m.contains_key("cpu") && m.contains_key("memory"), "{what}: {kind} {m:?}");
            }

            // The ops endpoint: the port the config listens on, on every interface.
            let cfg = pod_config(objs, d, stage);
            let listen = listen_of(&cfg);
            assert!(listen.ip().is_unspecified(), "{what}: listens on {listen}; probes need 0.0.0.0");
            let port = listen.port() as i32;
            let ops = c.ports.iter().flatten().find(|p| p.container_port == port).unwrap_or_else(|| panic!("{what}: no containerPort {port}"));
            let points_at_ops = |p: &IntOrString| match p {
                IntOrString::Int(n) => *n == port,
                IntOrString::String(s) => Some(s) == ops.name.as_ref(),
            };
            // The collector's /readyz is false on the standby replica by design; readiness
            // on it would stall rollouts and every drain (see its deployment.yaml).
            let ready_path = if stage == Stage::Collector { "/healthz" } else { "/readyz" };
            for (probe, path) in [(&c.liveness_probe, "/healthz"), (&c.readiness_probe, ready_path)] {
                let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("{what}: probe missing"));
                assert_eq!(get.path.as_deref(), Some(path), "{what}");
                assert!(points_at_ops(&get.port), "{what}: probe port {:?}", get.port);
            }
            let template = &d.spec.as_ref().unwrap().template;
            let ann = template.metadata.as_ref().and_then(|m| m.annotations.clone()).unwrap_or_default();
            assert_eq!(ann.get("prometheus.io/scrape").map(String::as_str), Some("true"), "{what}");
            assert_eq!(ann.get("prometheus.io/port"), Some(&port.to_string()), "{what}");
            assert_eq!(ann.get("prometheus.io/path").map(String::as_str), Some("/metrics"), "{what}");
            let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            let svc = objs.services.iter().find(|s| {
                let sel = s.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
                labels_match(&sel, &labels)
            });
            let svc = svc.unwrap_or_else(|| panic!("{what}: no Service for the ops port"));
            assert!(svc.spec.as_ref().unwrap().ports.iter().flatten().any(|p| p.target_port.as_ref().is_some_and(points_at_ops)), "{what}");
            assert!(
                objs.pdbs.iter().any(|p| {
                    let s = p.spec.as_ref().unwrap();
                    let sel = s.selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap_or_default();
                    labels_match(&sel, &labels) && (s.max_unavailable.is_some() || s.min_available.is_some())
                }),
                "{what}: no PodDisruptionBudget"
            );

            // Every file the config reads (TLS, passwords) comes from a Secret mounted there.
            let mut files = Vec::new();
            all_files(&cfg, &mut files);
            for f in files {
                let (dir, key) = (Path::new(&f).parent().unwrap(), Path::new(&f).file_name().unwrap().to_str().unwrap());
                let m = c.volume_mounts.iter().flatten().find(|m| Path::new(&m.mount_path) == dir);
                let m = m.unwrap_or_else(|| panic!("{what}: the config reads {f}, nothing is mounted at {}", dir.display()));
                let vol = spec.volumes.iter().flatten().find(|v| v.name == m.name).unwrap();
                let secret = vol.secret.as_ref().unwrap_or_else(|| panic!("{what}: {f} must come from a Secret"));
                assert!(secret.secret_name.is_some(), "{what}");
                assert!(secret.items.iter().flatten().any(|i| i.path == key), "{what}: Secret volume has no item {key}");
                assert_eq!(secret.default_mode, Some(0o440), "{what}: {f} readable by the pod's group only");
            }

            let token = spec.automount_service_account_token;
            if stage == Stage::Collector {
                assert_ne!(token, Some(false), "{what}: the collector calls the API server");
                check_collector(objs, d, &cfg);
            } else {
                assert_eq!(token, Some(false), "{what}: no API access, no token");
            }
            if stage == Stage::Processor {
                let hpa = objs.hpas.iter().find(|h| {
                    let r = &h.spec.as_ref().unwrap().scale_target_ref;
                    r.kind == "Deployment" && Some(&r.name) == d.metadata.name.as_ref()
                });
                let hpa = hpa.unwrap_or_else(|| panic!("{what}: no HorizontalPodAutoscaler")).spec.as_ref().unwrap();
                assert!(hpa.min_replicas.unwrap_or(1) >= 2 && hpa.max_replicas >= hpa.min_replicas.unwrap(), "{what}");
                assert!(hpa.metrics.as_ref().is_some_and(|m| !m.is_empty()), "{what}");
            }
        }
    }
}

/// One (scope, apiGroup, resource, resourceName, verb) a role grants; scope "" is
/// cluster-wide, else the namespace; resourceName "" is any.
type Grant = (String, String, String, String, String);

fn grants(scope: &str, rules: &[PolicyRule], out: &mut BTreeSet<Grant>) {
    for r in rules {
        let names = r.resource_names.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| vec![String::new()]);
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for n in &names {
                    for v in &r.verbs {
                        out.insert((scope.into(), g.clone(), res.clone(), n.clone(), v.clone()));
                    }
                }
            }
        }
    }
}

fn binds(subjects: &Option<Vec<Subject>>, sa: &str, ns: &str) -> bool {
    subjects.iter().flatten().any(|s| s.kind == "ServiceAccount" && s.name == sa && s.namespace.as_deref() == Some(ns))
}

/// Two replicas with leader election, and RBAC granting exactly what the collector calls.
fn check_collector(objs: &Objects, d: &Deployment, cfg: &Value) {
    let ns = d.metadata.namespace.as_deref().unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2), "{}: 2 replicas", objs.overlay);
    let le = &cfg["leader_election"];
    assert_eq!(le["namespace"], ns, "{}: the Lease lives in the collector's namespace", objs.overlay);
    let lease = le["lease_name"].as_str().expect("leader election is on");
    let sa = pod(d).service_account_name.as_deref().expect("a ServiceAccount of its own");
    assert!(objs.service_accounts.iter().any(|s| s.metadata.name.as_deref() == Some(sa) && s.metadata.namespace.as_deref() == Some(ns)));
    let mut granted = BTreeSet::new();
    for b in &objs.cluster_role_bindings {
        if binds(&b.subjects, sa, ns) {
            assert_eq!(b.role_ref.kind, "ClusterRole");
            let r = objs.cluster_roles.iter().find(|r| r.metadata.name.as_ref() == Some(&b.role_ref.name)).expect("bound ClusterRole");
            grants("", r.rules.as_deref().unwrap_or_default(), &mut granted);
        }
    }
    for b in &objs.role_bindings {
        if binds(&b.subjects, sa, ns) {
            let scope = b.metadata.namespace.clone().unwrap();
            let r = objs.roles.iter().find(|r| r.metadata.name.as_ref() == Some(&b.role_ref.name) && r.metadata.namespace == b.metadata.namespace);
            grants(&scope, r.expect("bound Role").rules.as_deref().unwrap_or_default(), &mut granted);
        }
    }
    let g = |scope: &str, group: &str, res: &str, name: &str, verb: &str| -> Grant {
        (scope.into(), group.into(), res.into(), name.into(), verb.into())
    };
    let mut want = BTreeSet::new();
    for group in ["events.k8s.io", ""] {
        for verb in ["get", "list", "watch"] {
            want.insert(g("", group, "events", "", verb));
        }
    }
    want.insert(g("", "", "namespaces", "kube-system", "get"));
    want.insert(g(ns, "coordination.k8s.io", "leases", lease, "get"));
    want.insert(g(ns, "coordination.k8s.io", "leases", lease, "update"));
    // `create` cannot be limited by resourceNames (the authorizer sees no name yet).
    want.insert(g(ns, "coordination.k8s.io", "leases", "", "create"));
    assert_eq!(granted, want, "{}: the collector's RBAC", objs.overlay);
}
