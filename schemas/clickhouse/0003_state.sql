-- 0003: the state tables — incidents, patterns, alerts — and cluster heartbeats.
--
-- Each incident, pattern and alert is written as a new *version* whenever its
-- state changes; storage keeps the latest: ReplacingMergeTree(version) keyed by
-- (cluster, id), so versions of one id collapse at merge time. Until a merge has
-- run, several versions may be stored, so readers query the `*_latest` views
-- (FINAL: exactly one row per id, the highest version) — never the tables.
-- `cluster_liveness` is the one to query for heartbeats (one row per cluster).
--
-- Every table carries the Kafka/raw positions of its rows and feeds sink_progress
-- through its own view, exactly like `events` (0001), so the sink loads them
-- exactly once too. No PARTITION BY: these tables are small, and all versions of
-- an id must share a partition for replacement to work.

CREATE TABLE IF NOT EXISTS {{db}}.{{local:incidents}}{{on_cluster}}
(
    id              String,
    version         Int64,
    cluster         LowCardinality(String),
    cluster_uid     LowCardinality(String),
    status          LowCardinality(String),
    severity        LowCardinality(String),
    rule            LowCardinality(String),
    root_event_id   String,
    root_event_uid  String,
    root_reason     LowCardinality(String),
    root_category   LowCardinality(String),
    root_kind       LowCardinality(String),
    root_namespace  LowCardinality(String),
    root_name       String,
    root_note       String CODEC(ZSTD(3)),
    -- "Kind namespace/name" of every affected object.
    affected_objects Array(String) CODEC(ZSTD(1)),
    reason_counts   Map(LowCardinality(String), Int64),
    event_count     Int64,
    occurrences     Int64,
    first_seen      DateTime64(3, 'UTC'),
    last_seen       DateTime64(3, 'UTC'),
    summary         String CODEC(ZSTD(3)),
    kafka_partition Int32,
    src_partition   Int32,
    src_offset      Int64,
    src_seq         Int32
)
ENGINE = {{engine:ReplacingMergeTree(version)}}
ORDER BY (cluster, id)
TTL toDateTime(last_seen) + INTERVAL 365 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed incidents cityHash64(id)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:incidents_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'incidents' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:incidents}}
WHERE src_partition >= 0
GROUP BY kafka_partition, src_partition;

CREATE VIEW IF NOT EXISTS {{db}}.incidents_latest{{on_cluster}}
AS SELECT * FROM {{db}}.incidents FINAL;

CREATE TABLE IF NOT EXISTS {{db}}.{{local:patterns}}{{on_cluster}}
(
    id                String,
    version           Int64,
    scope             LowCardinality(String),
    -- The cluster of a cluster pattern; "" for fleet patterns.
    cluster           LowCardinality(String),
    cluster_uid       LowCardinality(String),
    clusters          Array(LowCardinality(String)),
    key               String CODEC(ZSTD(1)),
    reason            LowCardinality(String),
    kind              LowCardinality(String),
    namespace         LowCardinality(String),
    template          String CODEC(ZSTD(3)),
    status            LowCardinality(String),
    count             Int64,
    first_seen        DateTime64(3, 'UTC'),
    last_seen         DateTime64(3, 'UTC'),
    per_minute        Float64,
    samples           Array(String),
    previous_episodes Array(DateTime64(3, 'UTC')),
    anomaly_score     Float64,
    kafka_partition   Int32,
    src_partition     Int32,
    src_offset        Int64,
    src_seq           Int32
)
ENGINE = {{engine:ReplacingMergeTree(version)}}
ORDER BY (cluster, id)
TTL toDateTime(last_seen) + INTERVAL 365 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed patterns cityHash64(id)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:patterns_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'patterns' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:patterns}}
WHERE src_partition >= 0
GROUP BY kafka_partition, src_partition;

CREATE VIEW IF NOT EXISTS {{db}}.patterns_latest{{on_cluster}}
AS SELECT * FROM {{db}}.patterns FINAL;

CREATE TABLE IF NOT EXISTS {{db}}.{{local:alerts}}{{on_cluster}}
(
    id              String,
    version         Int64,
    rule            LowCardinality(String),
    origin          LowCardinality(String),
    origin_id       String,
    firing          Bool,
    severity        LowCardinality(String),
    cluster         LowCardinality(String),
    cluster_uid     LowCardinality(String),
    namespace       LowCardinality(String),
    summary         String CODEC(ZSTD(3)),
    labels          Map(LowCardinality(String), String),
    starts_at       DateTime64(3, 'UTC'),
    -- 1970-01-01 (0) while firing.
    ends_at         DateTime64(3, 'UTC'),
    kafka_partition Int32,
    src_partition   Int32,
    src_offset      Int64,
    src_seq         Int32
)
ENGINE = {{engine:ReplacingMergeTree(version)}}
ORDER BY (cluster, id)
TTL toDateTime(starts_at) + INTERVAL 365 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed alerts cityHash64(id)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:alerts_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'alerts' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:alerts}}
WHERE src_partition >= 0
GROUP BY kafka_partition, src_partition;

CREATE VIEW IF NOT EXISTS {{db}}.alerts_latest{{on_cluster}}
AS SELECT * FROM {{db}}.alerts FINAL;

-- Heartbeats: liveness and how far each cluster has been processed, one row per
-- heartbeat (a few per minute per cluster), kept `ttl_days` so gaps stay visible.
-- Keyed by observation time, so a repeated heartbeat collapses into one row.
CREATE TABLE IF NOT EXISTS {{db}}.{{local:cluster_heartbeats}}{{on_cluster}}
(
    cluster            LowCardinality(String),
    cluster_uid        LowCardinality(String),
    collector_instance LowCardinality(String),
    leader_epoch       Int64,
    observed_at        DateTime64(3, 'UTC'),
    resource_version   String,
    last_bookmark      DateTime64(3, 'UTC'),
    kafka_partition    Int32,
    src_partition      Int32,
    src_offset         Int64,
    src_seq            Int32
)
ENGINE = {{engine:ReplacingMergeTree}}
PARTITION BY toDate(observed_at)
ORDER BY (cluster, cluster_uid, observed_at)
TTL toDateTime(observed_at) + INTERVAL {{ttl_days}} DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed cluster_heartbeats cityHash64(cluster_uid)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:cluster_heartbeats_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'cluster_heartbeats' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:cluster_heartbeats}}
WHERE src_partition >= 0
GROUP BY kafka_partition, src_partition;

-- One row per cluster: when it was last heard of, by which collector, and the
-- resourceVersion it had published up to. `now() - last_seen` is its silence.
CREATE VIEW IF NOT EXISTS {{db}}.cluster_liveness{{on_cluster}}
AS SELECT
    cluster,
    cluster_uid,
    max(observed_at) AS last_seen,
    argMax(collector_instance, observed_at) AS collector_instance,
    argMax(leader_epoch, observed_at) AS leader_epoch,
    argMax(resource_version, observed_at) AS resource_version,
    argMax(last_bookmark, observed_at) AS last_bookmark
FROM {{db}}.cluster_heartbeats
GROUP BY cluster, cluster_uid;
