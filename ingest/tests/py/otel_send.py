"""Send OpenTelemetry logs to `kevents ingest` with the OpenTelemetry Python SDK and
its OTLP/HTTP (protobuf) exporter, as an application would.

usage: otel_send.py ENDPOINT TOKEN CLUSTER NAMESPACE POD

Emits two log records about the pod (a WARN with the reason attribute
`k8s.event.reason=FailoverStarted`, and an INFO without one), flushes, and exits
non-zero when the export did not succeed.
"""
import sys
import time

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry._logs import SeverityNumber

endpoint, token, cluster, namespace, pod = sys.argv[1:6]


class Recording(OTLPLogExporter):
    """The SDK's exporter, remembering each export's result."""

    results = []

    def export(self, batch):
        r = super().export(batch)
        self.results.append(r)
        return r


resource = Resource.create({
    "service.name": "payment-gateway",
    "k8s.cluster.name": cluster,
    "k8s.namespace.name": namespace,
    "k8s.pod.name": pod,
    "k8s.container.name": "app",
})
exporter = Recording(endpoint=endpoint + "/v1/logs", headers={"Authorization": "Bearer " + token}, timeout=20)
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
logger = provider.get_logger("payment.failover")
now = time.time_ns()
logger.emit(timestamp=now, severity_number=SeverityNumber.WARN, severity_text="WARN",
            body="payment-gateway failover started: primary unreachable",
            attributes={"k8s.event.reason": "FailoverStarted", "attempt": 1})
logger.emit(timestamp=now + 1000, severity_number=SeverityNumber.INFO, severity_text="INFO",
            body="switched traffic to the secondary region")
provider.force_flush()
provider.shutdown()
ok = [r == LogRecordExportResult.SUCCESS for r in Recording.results]
print("exports", ok)
sys.exit(0 if ok and all(ok) else 1)
