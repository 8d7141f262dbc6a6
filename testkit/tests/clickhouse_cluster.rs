//! What a cluster of chdb nodes (`OwnedClickHouseCluster`) can and cannot do, checked on
//! the real processes (docs/clickhouse-cluster.md): `remote_servers` and macros from the
//! start flags, a `Distributed` table over two shards through the native protocol,
//! retried inserts deduplicated per shard, a shard killed and brought back; and the two
//! things clickhouse-local lacks — `ON CLUSTER` DDL and `ReplicatedMergeTree`
//! replication — asserted with their exact errors, so this test fails (and tells us to
//! switch to Keeper replication) the day chdb gains them.

use kevents_testkit::services::OwnedClickHouseCluster;

async fn sql(client: &clickhouse::Client, q: &str) {
    client.query(q).execute().await.unwrap_or_else(|e| panic!("{q}: {e}"));
}

async fn count(client: &clickhouse::Client, q: &str) -> u64 {
    client.query(q).fetch_one::<u64>().await.unwrap_or_else(|e| panic!("{q}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chdb_nodes_form_a_sharded_cluster_without_replication() {
    let t0 = std::time::Instant::now();
    let mut cluster = OwnedClickHouseCluster::spawn("kevents", 2, 1).expect("cluster");
    eprintln!("cluster up in {:?}", t0.elapsed());
    let (a, b) = (cluster.client(0), cluster.client(1));

    let members = a
        .query("SELECT shard_num, port FROM system.clusters WHERE cluster = 'kevents' ORDER BY shard_num")
        .fetch_all::<(u32, u16)>()
        .await
        .unwrap();
    assert_eq!(members, vec![(1, cluster.tcp_port(0)), (2, cluster.tcp_port(1))]);
    let macros = b.query("SELECT getMacro('shard'), getMacro('replica')").fetch_one::<(String, String)>().await.unwrap();
    assert_eq!(macros, ("02".to_string(), "r01".to_string()));

    for c in [&a, &b] {
        sql(c, "CREATE DATABASE IF NOT EXISTS d").await;
        sql(c, "CREATE TABLE d.t_local (k UInt64) ENGINE = MergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100").await;
    }
    sql(&a, "CREATE TABLE d.t AS d.t_local ENGINE = Distributed('kevents', 'd', 't_local', k)").await;
    let insert = |client: clickhouse::Client, from: u64, token: &'static str| async move {
        client
            .query(&format!("INSERT INTO d.t SELECT number + {from} FROM numbers(100)"))
            .with_setting("distributed_foreground_insert", "1")
            .with_setting("insert_deduplication_token", token)
            .execute()
            .await
    };
    insert(a.clone(), 0, "t1").await.unwrap();
    insert(a.clone(), 0, "t1").await.unwrap(); // a retry: dropped on both shards
    assert_eq!(count(&a, "SELECT count() FROM d.t").await, 100);
    assert_eq!(count(&a, "SELECT count() FROM d.t_local").await, 50);
    assert_eq!(count(&b, "SELECT count() FROM d.t_local").await, 50);

    // Shard 2 down: a foreground insert fails (the sink retries it), then lands once.
    cluster.kill9(1);
    let err = insert(a.clone(), 100, "t2").await.expect_err("a shard is down");
    eprintln!("insert with shard 2 down: {err}");
    cluster.start(1).unwrap();
    insert(a.clone(), 100, "t2").await.unwrap();
    assert_eq!(count(&a, "SELECT count() FROM d.t").await, 200);
    assert_eq!(count(&a, "SELECT uniqExact(k) FROM d.t").await, 200);

    // What clickhouse-local lacks. ON CLUSTER needs the server's DDLWorker:
    let e = a.query("CREATE DATABASE x ON CLUSTER 'kevents'").execute().await.unwrap_err().to_string();
    assert!(e.contains("Replicated DDL queries are disabled"), "{e}");
    // Replicated tables are created in ZooKeeper but stay read-only: activating a
    // replica needs the interserver address, which only clickhouse-server sets.
    sql(&a, "CREATE TABLE d.r (k UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/r', '{replica}') ORDER BY k").await;
    // (An INSERT would wait about 140 s for the replica to become writable, then fail
    // with TABLE_IS_READ_ONLY.)
    let readonly = a
        .query("SELECT is_readonly, toUInt8(total_replicas), toUInt8(active_replicas) FROM system.replicas WHERE database = 'd' AND table = 'r'")
        .fetch_one::<(u8, u8, u8)>()
        .await
        .unwrap();
    assert_eq!(readonly, (1, 1, 0), "read-only, registered in ZooKeeper, not active");
    let why: String = a
        .query("SELECT last_error_message FROM system.errors WHERE name = 'NO_ELEMENTS_IN_CONFIG'")
        .fetch_one()
        .await
        .unwrap();
    assert!(why.contains("'interserver_http(s)_port' required for replication"), "{why}");
    let e = a.query("SYSTEM START LISTEN INTERSERVER HTTP").execute().await.unwrap_err().to_string();
    assert!(e.contains("supports only TCP and HTTP listeners"), "{e}");
    eprintln!("done in {:?}", t0.elapsed());
}
