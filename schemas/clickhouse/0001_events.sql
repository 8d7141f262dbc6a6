-- 0001: the events table (one row per processed event version) and the sink's
-- progress table that makes loading exactly-once.
--
-- Which to query: `events` directly. The sink loads it exactly once (see
-- sink_progress below), so readers need no FINAL. The ReplacingMergeTree engine is a
-- second line for rows loaded from outside the pipeline (SourcePos partition -1,
-- which sink_progress does not track): those are deduplicated by `id` at merge time
-- (read them with FINAL if it matters).
--
-- ORDER BY (cluster, namespace, kind, name, event_time, id): the questions people ask
-- are "what happened to this object / in this namespace / in this cluster lately",
-- so the key narrows by cluster, then namespace, then the object, then time. `id`
-- (a hash of cluster uid, event uid, resourceVersion and watch kind) ends the key:
-- it is the dedup key, and every other key column is a function of the record with
-- that id, so two copies of one record always have equal sorting keys and collapse.
--
-- Placeholders (rendered by schemas::clickhouse): {{db}} database, {{on_cluster}}
-- " ON CLUSTER name" or "", {{local:T}} the table that holds the data (T, or T_local
-- on a ClickHouse cluster), {{engine:E(args)}} E or its Replicated form,
-- {{ttl_days}} raw retention. "-- @distributed T key" adds, on a cluster, a
-- Distributed table T over T_local.

CREATE TABLE IF NOT EXISTS {{db}}.{{local:events}}{{on_cluster}}
(
    id                 String CODEC(ZSTD(1)),
    cluster            LowCardinality(String),
    cluster_uid        LowCardinality(String),
    event_uid          String CODEC(ZSTD(1)),
    resource_version   String CODEC(ZSTD(1)),
    watch_kind         LowCardinality(String),
    api_shape          LowCardinality(String),
    namespace          LowCardinality(String),
    kind               LowCardinality(String),
    name               String CODEC(ZSTD(1)),
    object_uid         String CODEC(ZSTD(1)),
    field_path         String CODEC(ZSTD(1)),
    event_type         LowCardinality(String),
    reason             LowCardinality(String),
    category           LowCardinality(String),
    severity           LowCardinality(String),
    rule               LowCardinality(String),
    component          LowCardinality(String),
    reporting_instance LowCardinality(String),
    action             LowCardinality(String),
    message            String CODEC(ZSTD(3)),
    count              Int64,
    occurrences        Int64,
    event_time         DateTime64(3, 'UTC'),
    first_seen         DateTime64(3, 'UTC'),
    last_seen          DateTime64(3, 'UTC'),
    observed_at        DateTime64(3, 'UTC'),
    correlation_id     String CODEC(ZSTD(1)),
    container          LowCardinality(String),
    image              String CODEC(ZSTD(1)),
    node               LowCardinality(String),
    volume             String CODEC(ZSTD(1)),
    exit_code          Nullable(Int32),
    owner_kind         LowCardinality(String),
    owner_name         String CODEC(ZSTD(1)),
    -- Metadata keys without a column of their own (the typed columns above are not
    -- repeated here).
    metadata           Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    labels             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    leader_epoch       Int64,
    kafka_partition    Int32,
    src_partition      Int32,
    src_offset         Int64,
    src_seq            Int32,
    INDEX idx_correlation correlation_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_event_uid event_uid TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_message message TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 4
)
ENGINE = {{engine:ReplacingMergeTree}}
PARTITION BY toDate(event_time)
ORDER BY (cluster, namespace, kind, name, event_time, id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days}} DAY DELETE
-- The window lets a retried INSERT with the same insert_deduplication_token be
-- dropped on one node (replicated tables always deduplicate).
SETTINGS non_replicated_deduplication_window = 1000;

-- Sharded by the pair the sink's marks are kept for (below): all rows of one (Kafka
-- partition, raw partition) land on one shard, so that shard's mark speaks for all of
-- them. A key that split them (cluster_uid: several clusters share a raw partition)
-- would let one shard's mark cover rows another shard failed to store (an INSERT that
-- reached one shard, then a rebalance before its retry). docs/clickhouse-cluster.md.
-- @distributed events cityHash64(kafka_partition, src_partition)

-- The high-water mark of what the sink stored, per output table, Kafka partition
-- it was read from and raw partition it came from, written by the same INSERT as
-- the rows (through one materialized view per table), so it cannot fall behind
-- them. The sink reads it on partition assignment and drops records at or below
-- it: replays (processor or sink restarts) then add nothing. Read it with
-- maxMerge(high_water) ... GROUP BY (parts merge lazily).
CREATE TABLE IF NOT EXISTS {{db}}.{{local:sink_progress}}{{on_cluster}}
(
    table_name      LowCardinality(String),
    kafka_partition Int32,
    src_partition   Int32,
    high_water    AggregateFunction(max, Tuple(Int64, Int32))
)
ENGINE = {{engine:AggregatingMergeTree}}
ORDER BY (table_name, kafka_partition, src_partition)
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed sink_progress kafka_partition

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:events_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'events' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:events}}
WHERE src_partition >= 0
GROUP BY kafka_partition, src_partition;
