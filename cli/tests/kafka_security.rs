//! Kafka security, end to end against the real broker's SASL_SSL listener
//! (SCRAM-SHA-512 over TLS, CA and user made by `scripts/lib/kafka_broker.sh`):
//! - each stage (`kevents collector|processor|sink`) with a wrong password, and
//!   with a CA that did not sign the broker's certificate, stops within seconds
//!   with an error that names the setting — never an endless silent retry;
//! - the password never appears in the output, even in the error;
//! - the whole pipeline (simulated cluster → collector → processor → sink →
//!   ClickHouse) runs over SASL_SSL with `ca_file` and `password_file`;
//! - the processor, which commits in Kafka transactions, refuses a broker that
//!   cannot give it any (a real Apache Kafka whose transaction state topic cannot be
//!   created) with an error that says so, rather than degrading to at-least-once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::apiserver::{ApiServer, ServerOptions};
use testkit::services::{free_port, OwnedBroker, SaslListener, Services};

/// A `kafka:` section for the SASL_SSL listener with the given CA and password file.
fn kafka_yaml(sasl: &SaslListener, ca_file: &Path, password_file: &Path) -> String {
    format!(
        "kafka:\n  brokers: \"{}\"\n  security_protocol: sasl_ssl\n  tls: {{ca_file: {}}}\n  sasl: {{mechanism: SCRAM-SHA-512, username: {}, password_file: {}}}\n",
        sasl.bootstrap,
        ca_file.display(),
        sasl.username,
        password_file.display()
    )
}

/// A CA that signed nothing the broker has.
fn foreign_ca(dir: &Path) -> PathBuf {
    let ca = dir.join("foreign-ca.pem");
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not the broker's CA"])
        .arg("-keyout")
        .arg(dir.join("foreign-ca.key"))
        .arg("-out")
        .arg(&ca)
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl made no CA");
    ca
}

/// Config files for the three stages with `kafka` as their Kafka section.
fn stage_configs(dir: &Path, tag: &str, kafka: &str, kubeconfig: &Path) -> Vec<(&'static str, PathBuf)> {
    let ch = Services::get().clickhouse_url();
    let stages = [
        ("collector", format!("cluster: {{name: sec}}\nkubeconfig: {}\nlisten: 127.0.0.1:{}\n", kubeconfig.display(), free_port().unwrap())),
        ("processor", format!("listen: 127.0.0.1:{}\ncreate_topic_partitions: 0\n", free_port().unwrap())),
        ("sink", format!("listen: 127.0.0.1:{}\nclickhouse: {{url: \"{ch}\", database: kevents_sec}}\n", free_port().unwrap())),
    ];
    stages
        .into_iter()
        .map(|(stage, rest)| {
            let path = dir.join(format!("{stage}-{tag}.yaml"));
            std::fs::write(&path, format!("{kafka}{rest}")).unwrap();
            (stage, path)
        })
        .collect()
}

/// Run `kevents STAGE --config FILE`; it must exit non-zero within 30 s. Returns
/// its stderr and how long it ran.
fn must_fail(stage: &str, config: &Path) -> (String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kevents"))
        .args([stage, "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kevents");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(!status.success(), "kevents {stage} exited successfully with Kafka settings it cannot work with:\n{text}");
            return (text, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "kevents {stage} still running after 30 s with Kafka settings it cannot work with (a silent retry):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_untrusted_ca_stop_every_stage_naming_the_setting() {
    let sasl = Services::get().kafka_sasl().clone();
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(ServerOptions::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, "sec").unwrap();

    let wrong_password = "not-the-password-7f3a";
    let bad_pw_file = dir.path().join("wrong.password");
    std::fs::write(&bad_pw_file, format!("{wrong_password}\n")).unwrap();
    let foreign = foreign_ca(dir.path());

    let cases = [
        ("password", kafka_yaml(&sasl, &sasl.ca_file, &bad_pw_file), "kafka.sasl"),
        ("ca", kafka_yaml(&sasl, &foreign, &sasl.password_file), "kafka.tls.ca_file"),
    ];
    let real_password = sasl.password();
    for (tag, kafka, field) in cases {
        let configs = stage_configs(dir.path(), tag, &kafka, &kubeconfig);
        // The three stages at once: each must fail on its own within seconds.
        let runs: Vec<_> = configs
            .into_iter()
            .map(|(stage, path)| std::thread::spawn(move || (stage, must_fail(stage, &path))))
            .collect();
        for run in runs {
            let (stage, (text, took)) = run.join().unwrap();
            eprintln!("{tag}: kevents {stage} stopped after {took:.1?}");
            assert!(text.contains(field), "kevents {stage} with a bad {tag}: the error does not name {field}:\n{text}");
            assert!(took < Duration::from_secs(15), "kevents {stage} took {took:?} to report a bad {tag}");
            assert!(!text.contains(wrong_password) && !text.contains(&real_password), "a password leaked into the output of kevents {stage}:\n{text}");
        }
    }
}

/// A real Apache Kafka broker that cannot host `__transaction_state` (its replication
/// factor is 3 on a one-node cluster, as on a cluster that lost brokers or a managed
/// service with transactions disabled): `InitProducerId` finds no coordinator. The
/// processor must stop within its transaction timeout, saying transactions are what
/// it lacks; it never runs without them.
#[test]
fn processor_refuses_a_broker_without_transactions() {
    let broker = OwnedBroker::spawn_with(&[("transaction.state.log.replication.factor", "3")]).expect("private broker");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("processor.yaml");
    std::fs::write(
        &config,
        format!(
            "kafka:\n  brokers: \"{}\"\nlisten: 127.0.0.1:{}\ncreate_topic_partitions: 0\ntransaction_timeout_ms: 5000\ndrain_timeout_secs: 2\n",
            broker.bootstrap(),
            free_port().unwrap()
        ),
    )
    .unwrap();
    let (text, took) = must_fail("processor", &config);
    eprintln!("kevents processor stopped after {took:.1?}");
    assert!(
        text.contains("transactions could not be initialised") && text.contains("needs a reachable broker that supports them"),
        "kevents processor on a broker without transactions: the error does not say so:\n{text}"
    );
    assert!(took < Duration::from_secs(20), "kevents processor took {took:?} to give up on transactions (timeout 5 s)");
}
