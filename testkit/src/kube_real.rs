//! The real Kubernetes API server for tests: etcd + kube-apiserver (built from the Go
//! module proxy by `scripts/lib/kube_build.sh`) started as children of the test process,
//! on loopback, with TLS, a static admin token, RBAC and service-account signing keys —
//! the same flags as `scripts/kube up` (why each flag: docs/real-apiserver.md), except
//! `--etcd-compaction-interval=0`, so that only [`RealApiServer::compact`] makes old
//! resourceVersions 410.
//!
//! Nothing may outlive the test process: both children get `PR_SET_PDEATHSIG` (SIGKILL)
//! from a spawner thread that lives as long as the process, are stopped by PID on
//! `Drop`, and the process-wide [`RealApiServer::shared`] instance (statics are never
//! dropped) is stopped by a `libc::atexit` hook. Starting takes about 5 s, so a test
//! binary shares one instance and each test isolates itself in its own namespace
//! ([`RealApiServer::namespace`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::services::process::ServiceProcess;
use crate::services::{free_port, http_request, workspace_root, ServicesError};

/// Why the real API server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{what} not ready within {waited:?}{log_tail}")]
    NotReady { what: String, waited: Duration, log_tail: String },
    #[error("etcd answered {status}: {body}")]
    Etcd { status: u16, body: String },
    #[error(transparent)]
    Process(#[from] ServicesError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KubeError {
    let what = what.into();
    move |source| KubeError::Io { what, source }
}

/// A running etcd + kube-apiserver pair.
pub struct RealApiServer {
    dir: tempfile::TempDir,
    url: String,
    token: String,
    etcd_url: String,
    bin: PathBuf,
    children: Mutex<Vec<ServiceProcess>>,
}

/// The version `scripts/lib/kube_build.sh` builds (its `KUBE_VERSION=` line).
fn kube_version() -> String {
    let script = workspace_root().join("scripts/lib/kube_build.sh");
    std::fs::read_to_string(&script)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.trim().strip_prefix("KUBE_VERSION=").map(|v| v.trim_matches('"').to_string()))
        })
        .unwrap_or_else(|| "v1.37.2".into())
}

/// Where the binaries are: `$KEVENTS_CACHE/kube/<version>/bin` (default `~/.cache/kevents`).
pub fn bin_dir() -> PathBuf {
    let cache = std::env::var_os("KEVENTS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/kevents"));
    cache.join("kube").join(kube_version()).join("bin")
}

fn run(what: &str, cmd: &mut Command) -> Result<String, KubeError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(io(what))?;
    if !out.status.success() {
        return Err(KubeError::Command {
            what: what.into(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start `bin args` as a child of the test process (killed if the process dies,
/// `testkit::services::process`), its output in `log`.
fn spawn(what: &str, bin: &Path, args: &[String], log: &Path) -> Result<ServiceProcess, KubeError> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    Ok(ServiceProcess::spawn(what, cmd, log)?)
}

/// CA, serving cert for 127.0.0.1, service-account keys, the static token file.
fn make_pki(pki: &Path, token: &str) -> Result<(), KubeError> {
    std::fs::create_dir_all(pki).map_err(io("pki dir"))?;
    let ssl = |what: &str, args: &[&str]| run(what, Command::new("openssl").args(args).current_dir(pki));
    ssl("openssl CA", &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kevents-test-kube-ca",
        "-keyout", "ca.key", "-out", "ca.crt", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"])?;
    ssl("openssl serving key", &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
        "-keyout", "apiserver.key", "-out", "apiserver.csr"])?;
    std::fs::write(pki.join("apiserver.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
        .map_err(io("apiserver.ext"))?;
    ssl("openssl serving cert", &["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "apiserver.ext", "-out", "apiserver.crt"])?;
    ssl("openssl sa key", &["genrsa", "-out", "sa.key", "2048"])?;
    ssl("openssl sa pub", &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    std::fs::write(pki.join("tokens.csv"), format!("{token},kevents-admin,kevents-admin,\"system:masters\"\n"))
        .map_err(io("tokens.csv"))
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl RealApiServer {
    /// Build the binaries if they are missing (`scripts/lib/kube_build.sh`, minutes on a
    /// cold machine), then start etcd and kube-apiserver and wait for `/readyz`. Blocking.
    pub fn start() -> Result<RealApiServer, KubeError> {
        let bin = bin_dir();
        if !bin.join("kube-apiserver").exists() || !bin.join("etcd").exists() || !bin.join("kubectl").exists() {
            run("scripts/lib/kube_build.sh", Command::new("bash").arg(workspace_root().join("scripts/lib/kube_build.sh")))?;
        }
        let t0 = Instant::now();
        let dir = tempfile::Builder::new().prefix("kevents-kube-").tempdir().map_err(io("tempdir"))?;
        let token = random_hex(24);
        make_pki(&dir.path().join("pki"), &token)?;
        let mut server = RealApiServer {
            url: String::new(),
            token,
            etcd_url: String::new(),
            bin,
            children: Mutex::new(Vec::new()),
            dir,
        };
        server.spawn_pair()?;
        eprintln!("kube_real: kube-apiserver ready at {} in {:.1?}", server.url, t0.elapsed());
        Ok(server)
    }

    fn spawn_pair(&mut self) -> Result<(), KubeError> {
        let d = self.dir.path().to_owned();
        let pki = d.join("pki");
        let port = || free_port().map_err(io("free port"));
        let (client_port, peer_port, api_port) = (port()?, port()?, port()?);
        self.etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let etcd_log = d.join("etcd.log");
        let s = |v: &str| v.to_string();
        let etcd_args = vec![
            s("--name=kevents-test"), format!("--data-dir={}", d.join("etcd").display()),
            format!("--listen-client-urls={}", self.etcd_url), format!("--advertise-client-urls={}", self.etcd_url),
            format!("--listen-peer-urls={peer}"), format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=kevents-test={peer}"), s("--unsafe-no-fsync"), s("--log-level=warn"),
        ];
        let mut etcd = spawn("etcd", &self.bin.join("etcd"), &etcd_args, &etcd_log)?;
        let etcd_url = self.etcd_url.clone();
        let ready = etcd.wait_ready(&etcd_url, &etcd_log, Duration::from_secs(60), || {
            http_request(&etcd_url, "GET", "/health", "", Duration::from_secs(2))
                .is_ok_and(|(code, body)| code == 200 && body.contains("\"health\":\"true\""))
        });
        self.children.lock().unwrap().push(etcd);
        ready?;
        self.url = format!("https://127.0.0.1:{api_port}");
        let p = |f: &str| pki.join(f).display().to_string();
        let api_args = vec![
            format!("--etcd-servers={}", self.etcd_url), s("--etcd-prefix=/registry"),
            s("--bind-address=127.0.0.1"), s("--advertise-address=127.0.0.1"), format!("--secure-port={api_port}"),
            format!("--cert-dir={}", pki.display()), format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")), format!("--client-ca-file={}", p("ca.crt")),
            format!("--token-auth-file={}", p("tokens.csv")), s("--authorization-mode=Node,RBAC"),
            format!("--service-account-issuer={}", self.url), format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")), s("--service-cluster-ip-range=10.0.0.0/24"),
            s("--disable-admission-plugins=ServiceAccount"), s("--endpoint-reconciler-type=none"),
            s("--event-ttl=1h"), s("--etcd-compaction-interval=0"), s("--profiling=false"), s("--v=1"),
        ];
        let api_log = d.join("kube-apiserver.log");
        let mut api = spawn("kube-apiserver", &self.bin.join("kube-apiserver"), &api_args, &api_log)?;
        let ready = api.wait_ready(&self.url, &api_log, Duration::from_secs(120), || {
            self.curl("/readyz").is_ok_and(|b| b.trim() == "ok")
        });
        self.children.lock().unwrap().push(api);
        ready?;
        self.write_kubeconfig(&self.kubeconfig_path(), &self.token)?;
        // The system namespaces (kube-system: the cluster UID) appear shortly after /readyz.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.kubectl(&["get", "namespace", "kube-system", "-o", "name"]).is_err() {
            if Instant::now() > deadline {
                return Err(KubeError::NotReady { what: "namespace kube-system".into(), waited: Duration::from_secs(30), log_tail: String::new() });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// One instance per test process, started on first use and stopped at exit
    /// (`libc::atexit`; PR_SET_PDEATHSIG covers a killed test process).
    pub fn shared() -> &'static RealApiServer {
        static SHARED: OnceLock<RealApiServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let s = RealApiServer::start().expect("starting the real kube-apiserver");
            extern "C" fn stop_shared() {
                if let Some(s) = SHARED.get() {
                    s.stop();
                }
            }
            // SAFETY: registering a plain extern "C" function without captures.
            unsafe { libc::atexit(stop_shared) };
            s
        })
    }

    /// [`RealApiServer::shared`] from async code (the first call blocks ~5 s).
    pub async fn shared_async() -> &'static RealApiServer {
        tokio::task::spawn_blocking(RealApiServer::shared).await.expect("start task")
    }

    /// Stop the API server, then etcd (TERM, then KILL). Idempotent.
    pub fn stop(&self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut c) = children.pop() {
            c.stop(Duration::from_secs(10));
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("pki/ca.crt")
    }
    /// Token of `kevents-admin` (group `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.token
    }
    /// The admin kubeconfig (bearer token, the CA).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
    /// etcd's client URL (plain HTTP on loopback; its JSON gateway answers `/v3/...`).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }
    pub fn kubectl_path(&self) -> PathBuf {
        self.bin.join("kubectl")
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Write a kubeconfig for this server that authenticates with `token`.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> Result<(), KubeError> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kevents-test\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: kevents-user\n  user:\n    token: {token}\ncontexts:\n- name: kevents-test\n  context:\n    cluster: kevents-test\n    user: kevents-user\n\
             current-context: kevents-test\n",
            self.url,
            self.ca_path().display()
        );
        std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))
    }

    /// A kube client authenticated as `token` (a new one per call: a client belongs to
    /// the tokio runtime it first ran on, and every `#[tokio::test]` has its own).
    pub async fn client_with_token(&self, token: &str) -> kube::Client {
        let path = self.dir.path().join(format!("kc-{}.kubeconfig", random_hex(6)));
        self.write_kubeconfig(&path, token).expect("kubeconfig");
        let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig parses");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kube config");
        kube::Client::try_from(cfg).expect("kube client")
    }

    /// An admin kube client.
    pub async fn client(&self) -> kube::Client {
        self.client_with_token(&self.token).await
    }

    /// GET `path` with the admin token (curl: a blocking TLS client without a runtime).
    pub fn curl(&self, path: &str) -> Result<String, KubeError> {
        run("curl", Command::new("curl").args(["-sS", "--fail", "--max-time", "5", "--cacert"])
            .arg(self.ca_path()).arg("-H").arg(format!("Authorization: Bearer {}", self.token))
            .arg(format!("{}{path}", self.url)))
    }

    /// Run the built kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, KubeError> {
        run(&format!("kubectl {}", args.join(" ")), Command::new(self.kubectl_path()).arg("--kubeconfig").arg(self.kubeconfig_path()).args(args))
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> Result<String, KubeError> {
        let mut child = Command::new(self.kubectl_path())
            .arg("--kubeconfig").arg(self.kubeconfig_path()).args(["apply", "-f", "-"])
            .stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped())
            .spawn().map_err(io("kubectl apply"))?;
        child.stdin.take().expect("stdin").write_all(yaml.as_bytes()).map_err(io("kubectl apply stdin"))?;
        let out = child.wait_with_output().map_err(io("kubectl apply"))?;
        if !out.status.success() {
            return Err(KubeError::Command { what: "kubectl apply".into(), detail: String::from_utf8_lossy(&out.stderr).into() });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Create a namespace named `prefix-<random>` (a test's own scope) and return its name.
    pub fn namespace(&self, prefix: &str) -> Result<String, KubeError> {
        let name = format!("{prefix}-{}", random_hex(4));
        self.kubectl(&["create", "namespace", &name])?;
        Ok(name)
    }

    /// A token of ServiceAccount `namespace/name` (TokenRequest via `kubectl create token`).
    pub fn create_token(&self, namespace: &str, name: &str) -> Result<String, KubeError> {
        Ok(self.kubectl(&["create", "token", name, "-n", namespace, "--duration=2h"])?.trim().to_string())
    }

    /// etcd's current revision (= the newest resourceVersion).
    pub fn etcd_revision(&self) -> Result<u64, KubeError> {
        let (status, body) = http_request(&self.etcd_url, "POST", "/v3/kv/range", r#"{"key":"Lw=="}"#, Duration::from_secs(5))
            .map_err(io("etcd range"))?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|_| KubeError::Etcd { status, body: body.clone() })?;
        v["header"]["revision"].as_str().and_then(|r| r.parse().ok()).ok_or(KubeError::Etcd { status, body })
    }

    /// Compact etcd at its current revision (physical): every older resourceVersion is
    /// gone, and a watch from one gets the `ERROR` 410 Expired line. Returns the revision.
    pub fn compact(&self) -> Result<u64, KubeError> {
        let rev = self.etcd_revision()?;
        let body = format!(r#"{{"revision":"{rev}","physical":true}}"#);
        let (status, body) = http_request(&self.etcd_url, "POST", "/v3/kv/compaction", &body, Duration::from_secs(10))
            .map_err(io("etcd compaction"))?;
        if status != 200 {
            return Err(KubeError::Etcd { status, body });
        }
        Ok(rev)
    }
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
