-- 0006: `incidents_latest` shows the incidents that stand, not the ids they replaced.
--
-- When a cause arrives after its effects (same second, or within a rule's lookback),
-- the processor re-roots the incident at it: the incident takes the new root's event
-- id, and the old id gets a last version, resolved, whose root cause is the new root
-- ("re-rooted at …"). An incident is rooted at its own id (`id = root_event_id`);
-- a replaced id's last version is resolved and rooted at another incident's. Every
-- reader of this view — `kevents incidents`, `kevents report`, the Grafana dashboards
-- — so sees one incident per failure episode. The replaced ids stay in the
-- `incidents` table, with their history.
CREATE OR REPLACE VIEW {{db}}.incidents_latest{{on_cluster}}
AS SELECT * FROM {{db}}.incidents FINAL
WHERE NOT (status = 'resolved' AND root_event_id != '' AND root_event_id != id);
