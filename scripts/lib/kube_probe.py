"""scripts/lib/kube_probe.py: probe a real kube-apiserver started by `scripts/kube up` for the
behaviours kevents (and its own test API server) rely on: watch from an RV older than an etcd
compaction (410 Expired or not) for events.k8s.io/v1 and core/v1 Events vs a watch-cached
resource, list with resourceVersionMatch, watch from a future RV, Lease 409 on a stale RV.
It forces a compaction through etcd's HTTP gateway. Standard library only; findings are written
up in docs/real-apiserver.md.

Usage: python3 scripts/lib/kube_probe.py [$KEVENTS_DIR/kube/kube.env]"""
import base64, http.client, json, os, ssl, sys, time

env = {}
_kevents_dir = os.environ.get('KEVENTS_DIR') or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '.kevents')
ENV_FILE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(_kevents_dir, 'kube', 'kube.env')
for line in open(ENV_FILE):
    line = line.strip()
    if line and not line.startswith('#'):
        k, v = line.split('=', 1)
        env[k] = v
host, port = env['KEVENTS_KUBE_APISERVER_URL'].rsplit('/', 1)[1].split(':')
ctx = ssl.create_default_context(cafile=env['KEVENTS_KUBE_CA'])
TOKEN = env['KEVENTS_KUBE_ADMIN_TOKEN']
ETCD = env['KEVENTS_ETCD_URL'].split('//')[1]
PREFIX = env.get('KEVENTS_ETCD_PREFIX', '/registry')


def req(method, path, body=None, timeout=10):
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
    hdr = {'Authorization': 'Bearer ' + TOKEN, 'Accept': 'application/json'}
    if body is not None:
        body = json.dumps(body)
        hdr['Content-Type'] = 'application/json'
    c.request(method, path, body, hdr)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def watch(path, seconds=3):
    """Return (http status, list of (type, code/reason or name, rv)) for a watch."""
    sep = '&' if '?' in path else '?'
    st, data = req('GET', f'{path}{sep}watch=1&timeoutSeconds={seconds}', timeout=seconds + 5)
    out = []
    if st != 200:
        try:
            j = json.loads(data)
            return st, [('HTTP', j.get('code'), j.get('reason'), j.get('message'))]
        except Exception:
            return st, [data[:200]]
    for line in data.splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        o = e['object']
        if e['type'] == 'ERROR':
            out.append(('ERROR', o.get('code'), o.get('reason'), o.get('message')))
        else:
            out.append((e['type'], o['metadata'].get('name'), o['metadata'].get('resourceVersion')))
    return st, out


def etcd(path, body):
    c = http.client.HTTPConnection(ETCD.split(':')[0], int(ETCD.split(':')[1]), timeout=10)
    c.request('POST', path, json.dumps(body), {'Content-Type': 'application/json'})
    r = c.getresponse()
    d = r.read()
    c.close()
    return r.status, json.loads(d)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def core_event(ns, name):
    return {'apiVersion': 'v1', 'kind': 'Event', 'metadata': {'name': name, 'namespace': ns},
            'involvedObject': {'kind': 'Pod', 'namespace': ns, 'name': 'p1', 'apiVersion': 'v1'},
            'reason': 'Probe', 'message': name, 'type': 'Normal', 'source': {'component': 'probe'},
            'firstTimestamp': '2026-12-06T00:00:00Z', 'lastTimestamp': '2026-12-06T00:00:00Z', 'count': 1}


def new_event(ns, name):
    return {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event', 'metadata': {'name': name, 'namespace': ns},
            'eventTime': '2026-12-06T00:00:00.000000Z', 'reportingController': 'kevents.dev/probe',
            'reportingInstance': 'probe-1', 'action': 'Probe', 'reason': 'Probe', 'note': name, 'type': 'Normal',
            'regarding': {'kind': 'Pod', 'namespace': ns, 'name': 'p1', 'apiVersion': 'v1'}}


NS = 'probe-%d' % int(time.time())
print('namespace', NS, req('POST', '/api/v1/namespaces', {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})[0])
EV_NEW = f'/apis/events.k8s.io/v1/namespaces/{NS}/events'
EV_CORE = f'/api/v1/namespaces/{NS}/events'
CM = f'/api/v1/namespaces/{NS}/configmaps'

st, d = req('GET', EV_NEW)
rv0 = json.loads(d)['metadata']['resourceVersion']
print('list events.k8s.io/v1 ->', st, 'list RV', rv0)
for i in range(3):
    print('create core', req('POST', EV_CORE, core_event(NS, f'core-{i}'))[0],
          'create new', req('POST', EV_NEW, new_event(NS, f'new-{i}'))[0],
          'create cm', req('POST', CM, {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': f'cm-{i}'}})[0])

print('\n== before compaction: watch from list RV', rv0)
for p in (EV_NEW, EV_CORE, CM):
    print(p, watch(f'{p}?resourceVersion={rv0}', 2))

st, r = etcd('/v3/kv/range', {'key': b64(PREFIX + '/'), 'range_end': b64(PREFIX + '0'), 'count_only': True})
rev = int(r['header']['revision'])
print('\netcd revision', rev, 'keys under prefix', r.get('count'))
# one more write so that the compaction point is strictly behind the newest revision
print('create core (after rev read)', req('POST', EV_CORE, core_event(NS, 'core-late'))[0])
st, r = etcd('/v3/kv/compaction', {'revision': str(rev), 'physical': True})
print('compaction at', rev, '->', st, r)
time.sleep(1)

print('\n== after compaction at', rev, ': watch from old RV', rv0)
for p in (EV_NEW, EV_CORE, CM):
    print(p, watch(f'{p}?resourceVersion={rv0}', 2))
print('\n== after compaction: watch from old RV with allowWatchBookmarks')
for p in (EV_NEW, EV_CORE):
    print(p, watch(f'{p}?resourceVersion={rv0}&allowWatchBookmarks=true', 2))
print('\n== after compaction: list with old RV')
for p in (EV_NEW, EV_CORE, CM):
    for q in ('', '&resourceVersionMatch=NotOlderThan', '&resourceVersionMatch=Exact'):
        st, d = req('GET', f'{p}?resourceVersion={rv0}{q}')
        j = json.loads(d)
        print(p, q or '(no match)', '->', st, j.get('reason'), j.get('message', '')[:110] if st != 200 else 'items=%d rv=%s' % (len(j['items']), j['metadata']['resourceVersion']))
print('\n== after compaction: list with limit=1 and an old RV (pagination from etcd)')
for p in (EV_NEW, EV_CORE):
    st, d = req('GET', f'{p}?limit=1&resourceVersion={rv0}&resourceVersionMatch=Exact')
    j = json.loads(d)
    print(p, '->', st, j.get('reason'), j.get('message', '')[:120])

print('\n== cluster-wide watch from old RV')
for p in ('/apis/events.k8s.io/v1/events', '/api/v1/events'):
    print(p, watch(f'{p}?resourceVersion={rv0}', 2))

print('\n== watch from the current RV still works')
st, d = req('GET', EV_NEW)
rvn = json.loads(d)['metadata']['resourceVersion']
print(EV_NEW, 'rv', rvn, watch(f'{EV_NEW}?resourceVersion={rvn}', 1))

print('\n== Lease optimistic concurrency')
LEASES = f'/apis/coordination.k8s.io/v1/namespaces/{NS}/leases'
st, d = req('POST', LEASES, {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': 'leader'},
                             'spec': {'holderIdentity': 'a', 'leaseDurationSeconds': 15}})
lease = json.loads(d)
stale_rv = lease['metadata']['resourceVersion']
print('create lease ->', st, 'rv', stale_rv)
st, d = req('POST', LEASES, {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': 'leader'},
                             'spec': {'holderIdentity': 'b'}})
print('create again ->', st, json.loads(d).get('reason'))
lease['spec']['holderIdentity'] = 'b'
st, d = req('PUT', LEASES + '/leader', lease)
print('update with current rv ->', st, 'new rv', json.loads(d)['metadata']['resourceVersion'])
lease['spec']['holderIdentity'] = 'c'
lease['metadata']['resourceVersion'] = stale_rv
st, d = req('PUT', LEASES + '/leader', lease)
j = json.loads(d)
print('update with stale rv ->', st, j.get('reason'), j.get('message'))

print('\n== compaction boundary, future RV, no RV')
rvs = []
for i in range(4):
    st, d = req('POST', EV_CORE, core_event(NS, f'c-{i}'))
    rvs.append(int(json.loads(d)['metadata']['resourceVersion']))
print('created rvs', rvs)
st, r = etcd('/v3/kv/compaction', {'revision': str(rvs[2]), 'physical': True})
print('compacted at', rvs[2])
# The API server watches etcd from RV+1: RV >= compaction-1 still works, older gets 410.
for rv in (rvs[0], rvs[1], rvs[2], rvs[3]):
    print('watch core from', rv, watch(f'{EV_CORE}?resourceVersion={rv}', 1))
print('watch core from future rv', rvs[3]+1000, watch(f'{EV_CORE}?resourceVersion={rvs[3]+1000}', 2))
print('watch new  from future rv', rvs[3]+1000, watch(f'{EV_NEW}?resourceVersion={rvs[3]+1000}', 2))
print('watch core rv=0', watch(f'{EV_CORE}?resourceVersion=0', 1))
print('watch core no rv', watch(f'{EV_CORE}', 1))
print('watch cm from future rv', watch(f'/api/v1/namespaces/{NS}/configmaps?resourceVersion={rvs[3]+1000}', 2))
st, d = req('GET', f'{EV_CORE}?resourceVersion={rvs[3]+1000}')
print('list core future rv ->', st, d[:200])
st, d = req('GET', f'/api/v1/namespaces/{NS}/configmaps?resourceVersion={rvs[3]+1000}', timeout=20)
print('list cm future rv ->', st, d[:200])
