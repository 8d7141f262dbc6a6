-- 0004: patterns across clusters and across days, as views over `patterns_latest`
-- (0003: one row per pattern episode, its latest version).
--
-- Why in ClickHouse: the processor detects patterns per raw partition, and the
-- clusters of a fleet live on different partitions and members, so no processor
-- sees two clusters' episodes of a key together, nor (beyond its replay horizon)
-- last week's. The stored episodes do. A similarity key (reason|kind|namespace|
-- template) holds no cluster, so the same key in two clusters is the same failure.
-- Only cluster-scope rows count: a fleet row is itself a summary.

-- One row per key seen as a pattern in at least two clusters (over all time; the
-- query API applies a time range before grouping): the clusters, summed counts,
-- first and last occurrence, episodes, and how many clusters have it open now.
CREATE VIEW IF NOT EXISTS {{db}}.fleet_patterns{{on_cluster}}
AS SELECT
    key,
    reason,
    kind,
    namespace,
    template,
    toUInt64(uniqExact(cluster_uid)) AS cluster_count,
    arraySort(groupUniqArray(cluster)) AS clusters,
    toUInt64(uniqExactIf(cluster_uid, status = 'open')) AS open_clusters,
    toUInt64(count()) AS episodes,
    sum(count) AS count,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    max(anomaly_score) AS max_anomaly_score
FROM {{db}}.patterns_latest
WHERE scope = 'cluster'
GROUP BY key, reason, kind, namespace, template
HAVING cluster_count >= 2;

-- Every episode of every key per cluster, in order, with its number among that
-- key's episodes in that cluster, their total, and the start of the one before:
-- "this pod's back-off also happened on Nov 3 and Nov 10".
CREATE VIEW IF NOT EXISTS {{db}}.pattern_episodes{{on_cluster}}
AS SELECT
    cluster,
    cluster_uid,
    key,
    reason,
    kind,
    namespace,
    template,
    id,
    status,
    count,
    first_seen,
    last_seen,
    per_minute,
    anomaly_score,
    toUInt64(row_number() OVER w) AS episode,
    toUInt64(count() OVER (PARTITION BY cluster_uid, key)) AS episodes,
    lagInFrame(first_seen, 1, toDateTime64(0, 3, 'UTC')) OVER w AS previous_first_seen
FROM {{db}}.patterns_latest
WHERE scope = 'cluster'
WINDOW w AS (PARTITION BY cluster_uid, key ORDER BY first_seen ASC, id ASC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
