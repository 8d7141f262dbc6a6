//! The message template: an event's note with names, numbers and ids masked, so
//! that the same failure on different pods, nodes and images has one template.
//!
//! Masks (the template is stored and shown, so they say what was there):
//! - `<num>` integers, decimals, quantities (`100Mi`, `8123456kB`, `50%`), version-
//!   and date-like runs of digits (`1.4.2`, `2024-05-01`), `0/6` → `<num>/<num>`;
//! - `<dur>` Go durations (`5m0s`, `1.627s`, `100ms`);
//! - `<ip>` IPv4 (with a port) and IPv6 addresses;
//! - `<uid>` UUIDs; `<hex>` hex ids of 8+ characters (`0x…` too);
//! - `<*>` names: any other word with a digit (`web-7d9f8c6b5-x2k4q`, `node-3`),
//!   words with a `/` (`shop/web`, URLs, taint keys), a quoted string (`"<*>"`),
//!   a bracketed list (`[<*>]`), and the word after `pod`, `container`, `node`, `job`,
//!   `replica set`, `StatefulSet`, `Claim` (`Back-off restarting failed container
//!   <*> in pod <*>(<uid>)`) unless it is an ordinary English word (`Node is not
//!   ready` keeps `is`), and the process name in `Killed process <num> (<*>)`.
//!
//! client-go's `(combined from similar events): ` prefix is dropped.
//!
//! `key:value` words keep the key (`total-vm:<num>`, `UID:<num>`); everything else —
//! reasons, `Insufficient cpu`, `MountVolume.SetUp`, `NotFound` — is kept. Runs of
//! whitespace become one space. Only the first [`MAX_NOTE_BYTES`] are read: a
//! template is a key, and kubelet messages can carry whole stack traces.
//!
//! Why hand-written: this runs on every event that can feed a pattern. One pass over
//! the bytes, each word classified by looking at its bytes once or twice, no regex
//! and no allocation beyond the output (see `benches/patterns.rs`).

/// Bytes of a note that are read; the rest does not change the template.
pub const MAX_NOTE_BYTES: usize = 1024;

/// client-go's `EventAggregator` prefix on the 11th similar event in 10 minutes
/// (`tools/record/events_cache.go`): the same event, so the same template.
const COMBINED: &str = "(combined from similar events): ";

/// The template of `note` (see the module documentation for the masks).
pub fn template(note: &str) -> String {
    let mut out = String::with_capacity(note.len().min(MAX_NOTE_BYTES));
    template_into(note, &mut out);
    out
}

/// [`template`] into a reused buffer (cleared first): the detector's hot path.
pub fn template_into(note: &str, out: &mut String) {
    out.clear();
    let note = note.strip_prefix(COMBINED).unwrap_or(note);
    let mut end = note.len().min(MAX_NOTE_BYTES);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    let b = &note.as_bytes()[..end];
    let mut w = Writer { src: note, out, from: 0 };
    let mut i = 0;
    // The previous word names a thing (`pod`, `container`, ...): the next word,
    // after a space, `: ` or `=`, is its name.
    let mut armed = false;
    // `process <pid> (<name>)`: 1 after `process`, 2 after the pid, 3 after `(`.
    let mut process = 0u8;
    while i < b.len() {
        let c = b[i];
        let class = CLASS[c as usize];
        if class == WS {
            let start = i;
            while i < b.len() && CLASS[b[i] as usize] == WS {
                i += 1;
            }
            if start == 0 || i == b.len() {
                w.replace(start, i, "");
            } else if i - start > 1 || c != b' ' {
                w.replace(start, i, " ");
            }
            continue;
        }
        if class == OPEN {
            armed = false;
            process = 0;
            let closing = if c == b'"' { closing_quote(b, i + 1) } else { closing_bracket(b, i) };
            match closing {
                Some(j) if c == b'"' => {
                    if j > i + 1 {
                        w.replace(i, j + 1, "\"<*>\"");
                    }
                    i = j + 1;
                }
                Some(j) => {
                    let empty = b[i + 1..j].iter().all(u8::is_ascii_whitespace);
                    w.replace(i, j + 1, if empty { "[]" } else { "[<*>]" });
                    i = j + 1;
                }
                None => i += 1,
            }
        } else if class == DELIM {
            armed &= c == b'=';
            process = if process == 2 && c == b'(' { 3 } else { 0 };
            i += 1;
        } else {
            let start = i;
            let mut seen = 0;
            while i < b.len() {
                let class = CLASS[b[i] as usize];
                if class & (WS | DELIM | OPEN) != 0 {
                    break;
                }
                seen |= class;
                i += 1;
            }
            let text = &note[start..i];
            armed = word(&mut w, start, i, seen, armed || process == 3);
            process = match (process, text) {
                (_, "process") => 1,
                (1, _) if text.bytes().all(|c| c.is_ascii_digit()) => 2,
                _ => 0,
            };
        }
    }
    w.finish(b.len());
}

/// Copies the note through, except the parts replaced: most of a message is
/// kept, so it is copied in a few long runs rather than word by word.
struct Writer<'a> {
    src: &'a str,
    out: &'a mut String,
    /// Everything before this is written.
    from: usize,
}

impl Writer<'_> {
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        self.flush(start);
        self.out.push_str(with);
        self.from = end;
    }

    fn flush(&mut self, to: usize) {
        self.out.push_str(&self.src[self.from..to]);
        self.from = to;
    }

    fn finish(&mut self, end: usize) {
        self.flush(end);
    }
}

// Byte classes, looked up once per byte: the loop reads every byte once.
const WS: u8 = 1;
/// Ends a word and is copied as it is.
const DELIM: u8 = 2;
/// `"` and `[`: a quoted string or a list follows.
const OPEN: u8 = 4;
const DIGIT: u8 = 8;
const SLASH: u8 = 16;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_whitespace() {
            WS
        } else if matches!(c, b'(' | b')' | b'{' | b'}' | b']' | b',' | b';' | b'=') {
            DELIM
        } else if c == b'"' || c == b'[' {
            OPEN
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'/' {
            SLASH
        } else {
            0
        };
        i += 1;
    }
    t
}

fn closing_quote(b: &[u8], from: usize) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

fn closing_bracket(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Masks the word `src[start..end]` or keeps it; returns whether it arms the next
/// word. `seen`: the byte classes in it (digits, slashes).
fn word(w: &mut Writer<'_>, start: usize, end: usize, seen: u8, armed: bool) -> bool {
    // Punctuation around a word is kept and not part of what is classified
    // (`pod:`, `memory.`, the `:443` after `[fd00::1]`).
    let b = w.src.as_bytes();
    let (mut cs, mut ce) = (start, end);
    while cs < ce && b[cs] == b':' {
        cs += 1;
    }
    while ce > cs && matches!(b[ce - 1], b'.' | b':' | b'!' | b'?') {
        ce -= 1;
    }
    let core = &b[cs..ce];
    // `i/o` is a word; `shop/web` and URLs are names.
    if seen & DIGIT != 0 || (seen & SLASH != 0 && core.len() > 3) {
        match mask(core) {
            Some(m) => w.replace(cs, ce, m),
            None => {
                w.flush(cs);
                key_value(&w.src[cs..ce], w.out);
                w.from = ce;
            }
        }
    } else if armed && looks_like_name(core) && !is_plain_word(core) {
        w.replace(cs, ce, "<*>");
    }
    is_context(core) && !b[ce..end].contains(&b'.')
}

/// `key:value` keeps a key without digits; anything else with a digit or a `/` is
/// a name.
fn key_value(core: &str, out: &mut String) {
    let b = core.as_bytes();
    if let Some(p) = b.iter().position(|&c| c == b':') {
        let key = &b[..p];
        if p > 0 && !key.iter().any(u8::is_ascii_digit) && !key.contains(&b'/') {
            out.push_str(&core[..=p]);
            let value = &core[p + 1..];
            if value.is_empty() {
                return;
            }
            return match mask(value.as_bytes()) {
                Some(m) => out.push_str(m),
                None if value.bytes().any(|c| c.is_ascii_digit() || c == b'/') => key_value(value, out),
                None => out.push_str(value),
            };
        }
    }
    out.push_str("<*>");
}

/// The typed mask of a word, if it is a number, duration, address or id.
fn mask(b: &[u8]) -> Option<&'static str> {
    let first = *b.first()?;
    if !(first.is_ascii_digit() || first == b'-' || first == b'+') {
        // Starting with a letter: only hex shapes are possible.
        return if !first.is_ascii_hexdigit() || !b.iter().any(u8::is_ascii_digit) {
            None
        } else if is_ipv6(b) {
            Some("<ip>")
        } else if is_uuid(b) {
            Some("<uid>")
        } else if is_hex_id(b) {
            Some("<hex>")
        } else {
            None
        };
    }
    let unsigned = if first.is_ascii_digit() { b } else { &b[1..] };
    if is_number(unsigned) {
        return Some("<num>");
    }
    if is_ipv4(b) || is_ipv6(b) {
        return Some("<ip>");
    }
    if is_uuid(b) {
        return Some("<uid>");
    }
    if is_duration(unsigned) {
        return Some("<dur>");
    }
    if is_quantity(unsigned) || is_digit_run(b) {
        return Some("<num>");
    }
    if let Some(p) = b.iter().position(|&c| c == b'/') {
        if is_number(&b[..p]) && is_number(&b[p + 1..]) {
            return Some("<num>/<num>");
        }
    }
    if is_hex_id(b) {
        return Some("<hex>");
    }
    None
}

/// `42`, `3.5`.
fn is_number(b: &[u8]) -> bool {
    let mut dot = false;
    !b.is_empty()
        && b[0].is_ascii_digit()
        && b.iter().all(|&c| {
            if c == b'.' && !dot {
                dot = true;
                true
            } else {
                c.is_ascii_digit()
            }
        })
        && b[b.len() - 1].is_ascii_digit()
}

/// Only digits and `.`, `:`, `-`, `_`: versions, dates, times, ranges.
fn is_digit_run(b: &[u8]) -> bool {
    b.iter().all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b':' | b'-' | b'_'))
}

/// `100Mi`, `8123456kB`, `50%`, `1.5Gi`: a number and a unit of up to 3 letters.
fn is_quantity(b: &[u8]) -> bool {
    let n = b.iter().take_while(|&&c| c.is_ascii_digit() || c == b'.').count();
    let unit = &b[n..];
    n > 0 && is_number(&b[..n]) && (unit == b"%" || (1..=3).contains(&unit.len()) && unit.iter().all(u8::is_ascii_alphabetic))
}

/// Go's `time.Duration` text: `1h2m3.5s`, `5m0s`, `100ms`, `3µs`.
fn is_duration(b: &[u8]) -> bool {
    let mut i = 0;
    let mut groups = 0;
    while i < b.len() {
        let n = b[i..].iter().take_while(|&&c| c.is_ascii_digit() || c == b'.').count();
        if n == 0 || !is_number(&b[i..i + n]) {
            return false;
        }
        i += n;
        let rest = &b[i..];
        let unit = ["ms", "us", "µs", "ns", "h", "m", "s"].into_iter().find(|u| rest.starts_with(u.as_bytes()));
        match unit {
            Some(u) => i += u.len(),
            None => return false,
        }
        groups += 1;
    }
    groups > 0
}

/// `10.0.0.1`, `10.0.0.1:8080`.
fn is_ipv4(b: &[u8]) -> bool {
    let addr = match b.iter().position(|&c| c == b':') {
        Some(p) if p + 1 < b.len() && b[p + 1..].iter().all(u8::is_ascii_digit) => &b[..p],
        Some(_) => return false,
        None => b,
    };
    let mut parts = 0;
    for part in addr.split(|&c| c == b'.') {
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
        parts += 1;
    }
    parts == 4
}

/// `fd00::1`, `2001:db8:0:0:0:0:2:1` (hex groups and at least two colons).
fn is_ipv6(b: &[u8]) -> bool {
    b.iter().filter(|&&c| c == b':').count() >= 2 && b.iter().all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
}

/// `0b8c1f7e-1111-2222-3333-444455556666`.
fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Hex ids of 8+ digits (`3f9a2c1d`, `0x7ffe`).
fn is_hex_id(b: &[u8]) -> bool {
    if let Some(rest) = b.strip_prefix(b"0x") {
        return !rest.is_empty() && rest.iter().all(u8::is_ascii_hexdigit);
    }
    b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit)
}

/// Lowercase DNS-ish: what Kubernetes names are made of.
fn looks_like_name(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_'))
}

/// Words after which a name follows in the messages of kubelet and the controllers.
fn is_context(b: &[u8]) -> bool {
    matches!(b, b"pod" | b"Pod" | b"container" | b"Container" | b"node" | b"Node" | b"job" | b"set" | b"StatefulSet" | b"Claim")
}

/// Words that follow a context word in real messages and are not names
/// ("Node is not ready", "pod triggered scale-up", "Container image ... present").
fn is_plain_word(b: &[u8]) -> bool {
    matches!(
        b,
        b"a" | b"an"
            | b"and"
            | b"are"
            | b"as"
            | b"at"
            | b"be"
            | b"been"
            | b"by"
            | b"can"
            | b"cannot"
            | b"could"
            | b"did"
            | b"didn't"
            | b"does"
            | b"doesn't"
            | b"failed"
            | b"for"
            | b"from"
            | b"group"
            | b"had"
            | b"has"
            | b"have"
            | b"id"
            | b"image"
            | b"in"
            | b"is"
            | b"isn't"
            | b"may"
            | b"must"
            | b"not"
            | b"of"
            | b"on"
            | b"or"
            | b"process"
            | b"sandbox"
            | b"status"
            | b"that"
            | b"the"
            | b"this"
            | b"to"
            | b"triggered"
            | b"was"
            | b"wasn't"
            | b"were"
            | b"will"
            | b"with"
            | b"without"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real message formats (kubelet, scheduler, controllers, autoscaler, NPD) and
    /// their templates.
    #[test]
    fn real_messages_have_the_expected_templates() {
        let cases = [
            (
                "Back-off restarting failed container app in pod web-7d9f8c6b5-x2k4q_shop(0b8c1f7e-1111-2222-3333-444455556666)",
                "Back-off restarting failed container <*> in pod <*>(<uid>)",
            ),
            ("Successfully assigned shop/web-abc12 to node-3", "Successfully assigned <*> to <*>"),
            (
                "Readiness probe failed: Get \"http://10.244.1.17:8080/ready\": dial tcp 10.244.1.17:8080: connect: connection refused",
                "Readiness probe failed: Get \"<*>\": dial tcp <ip>: connect: connection refused",
            ),
            ("Liveness probe failed: HTTP probe failed with statuscode: 503", "Liveness probe failed: HTTP probe failed with statuscode: <num>"),
            (
                "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:9000kB oom_score_adj:-997",
                "Memory cgroup out of memory: Killed process <num> (<*>) total-vm:<num>, anon-rss:<num>, file-rss:<num>, shmem-rss:<num>, UID:<num> pgtables:<num> oom_score_adj:<num>",
            ),
            (
                "0/6 nodes are available: 5 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/6 nodes are available: 6 No preemption victims found for incoming pod.",
                "<num>/<num> nodes are available: <num> Insufficient cpu, <num> node(s) had untolerated taint {<*>: }. preemption: <num>/<num> nodes are available: <num> No preemption victims found for incoming pod.",
            ),
            (
                "Failed to pull image \"registry.example.com/shop/app:2.0.0-rc1\": rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example.com/shop/app:2.0.0-rc1\": failed to resolve reference \"registry.example.com/shop/app:2.0.0-rc1\": registry.example.com/shop/app:2.0.0-rc1: not found",
                "Failed to pull image \"<*>\": rpc error: code = NotFound desc = failed to pull and unpack image \"<*>\": failed to resolve reference \"<*>\": <*>: not found",
            ),
            (
                "Successfully pulled image \"nginx:1.27\" in 1.627s (3.2s including waiting). Image size: 72099876 bytes.",
                "Successfully pulled image \"<*>\" in <dur> (<dur> including waiting). Image size: <num> bytes.",
            ),
            ("Back-off 5m0s restarting failed container=app pod=web-1_shop(0b8c1f7e-1111-2222-3333-444455556666)", "Back-off <dur> restarting failed container=<*> pod=<*>(<uid>)"),
            ("Node ip-10-0-1-2.ec2.internal status is now: NodeNotReady", "Node <*> status is now: NodeNotReady"),
            ("Node is not ready", "Node is not ready"),
            ("Marking for deletion Pod shop/web-7d9f8c6b5-x2k4q", "Marking for deletion Pod <*>"),
            ("Scaled up replica set web-7d9f8c6b5 from 2 to 3", "Scaled up replica set <*> from <num> to <num>"),
            ("Created pod: web-bcdfg", "Created pod: <*>"),
            ("Stopping container cart", "Stopping container <*>"),
            ("Container cart failed liveness probe, will be restarted", "Container <*> failed liveness probe, will be restarted"),
            ("Container image \"nginx\" already present on machine", "Container image \"<*>\" already present on machine"),
            (
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. Container app was using 600Mi, request is 512Mi, has larger consumption of memory. ",
                "The node was low on resource: memory. Threshold quantity: <num>, available: <num>. Container <*> was using <num>, request is <num>, has larger consumption of memory.",
            ),
            ("MountVolume.SetUp failed for volume \"data\" : secret \"cart-tls\" not found", "MountVolume.SetUp failed for volume \"<*>\" : secret \"<*>\" not found"),
            (
                "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-x2k4q]: timed out waiting for the condition",
                "Unable to attach or mount volumes: unmounted volumes=[<*>], unattached volumes=[<*>]: timed out waiting for the condition",
            ),
            ("pod triggered scale-up: [{eks-general 3->5 (max: 20)}]", "pod triggered scale-up: [<*>]"),
            ("pod didn't trigger scale-up: 3 max node group size reached", "pod didn't trigger scale-up: <num> max node group size reached"),
            ("Saw completed job: hello-29000123, condition: Failed", "Saw completed job: <*>, condition: Failed"),
            ("create Claim data-db-0 Pod db-0 in StatefulSet db success", "create Claim <*> Pod <*> in StatefulSet <*> success"),
            ("Preempted by pod 4f1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff on node gke-pool-abcd", "Preempted by pod <uid> on node <*>"),
            ("storageclass.storage.k8s.io \"fast\" not found", "<*> \"<*>\" not found"),
            ("Started container sidecar-7f3a9c2e1d", "Started container <*>"),
            ("failed to sync secret cache: timed out waiting for the condition", "failed to sync secret cache: timed out waiting for the condition"),
            ("Pulling image sha256:3f9a2c1d4e5f6a7b8c9d0e1f", "Pulling image <*>"),
            ("dial tcp [fd00::1]:443: i/o timeout after 2024-05-01T10:00:00Z", "dial tcp [<*>]:<num>: i/o timeout after <*>"),
            ("New size: 5; reason: cpu resource utilization (percentage of request) above target", "New size: <num>; reason: cpu resource utilization (percentage of request) above target"),
            ("task 3f9a2c1d4e5f6a7b exited, container id 0x7ffe", "task <hex> exited, container id <hex>"),
            ("", ""),
            ("  spaced\n\tout  ", "spaced out"),
        ];
        for (note, want) in cases {
            assert_eq!(template(note), want, "{note}");
        }
    }

    #[test]
    fn the_same_failure_on_different_objects_has_one_template() {
        let groups: [&[&str]; 4] = [
            &[
                "Back-off restarting failed container app in pod web-7d9f8c6b5-x2k4q_shop(0b8c1f7e-1111-2222-3333-444455556666)",
                "Back-off restarting failed container cart in pod cart-6c4b9d7f8-bcdfg_shop(1c9d2f8a-aaaa-bbbb-cccc-ddddeeeeffff)",
                "Back-off restarting failed container worker in pod jobs-worker-0_batch(22222222-3333-4444-5555-666666666666)",
            ],
            &[
                "Successfully assigned shop/web-abc12 to node-3",
                "Successfully assigned payments/api-7d9f8c6b5-x2k4q to ip-10-0-3-17.eu-west-1.compute.internal",
            ],
            &[
                "Liveness probe failed: Get \"http://10.244.1.17:8080/healthz\": dial tcp 10.244.1.17:8080: connect: connection refused",
                "Liveness probe failed: Get \"http://10.244.9.3:9090/livez\": dial tcp 10.244.9.3:9090: connect: connection refused",
            ],
            &[
                "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB",
                "Memory cgroup out of memory: Killed process 17 (java) total-vm:10kB, anon-rss:9kB, file-rss:1kB, shmem-rss:0kB",
                "(combined from similar events): Memory cgroup out of memory: Killed process 9 (python3) total-vm:10kB, anon-rss:9kB, file-rss:1kB, shmem-rss:0kB",
            ],
        ];
        for g in groups {
            let first = template(g[0]);
            for note in &g[1..] {
                assert_eq!(template(note), first, "{note}");
            }
        }
        // Different failures stay apart.
        assert_ne!(template("0/6 nodes are available: 6 Insufficient cpu."), template("0/6 nodes are available: 6 Insufficient memory."));
        assert_ne!(template("Liveness probe failed: x"), template("Readiness probe failed: x"));
    }

    #[test]
    fn long_and_odd_input_is_bounded_and_never_panics() {
        let long = "é".repeat(4000);
        let t = template(&long);
        assert!(t.len() <= MAX_NOTE_BYTES && t.chars().all(|c| c == 'é'));
        for odd in ["\"", "[", "[[]", "\"\\", "a\"b", "::", "-", "0x", ":5", "pod", "pod ", "µs5", "5µs", "[ ]", "x=", "\u{0}"] {
            let _ = template(odd);
        }
        assert_eq!(template("[ ]"), "[]");
        assert_eq!(template("took 3µs"), "took <dur>");
        assert_eq!(template("unclosed \"quote here"), "unclosed \"quote here");
    }

    /// Every message the simulator's scenarios emit (kubelet, scheduler, controllers,
    /// autoscaler, node-problem-detector formats, several seeds): no template keeps a
    /// name, uid or address of the run, and the thousand-odd messages reduce to a
    /// few dozen templates.
    #[test]
    fn simulated_fleet_messages_lose_every_name_and_collapse() {
        use std::collections::BTreeSet;
        use testkit::sim::{generate, Emission, ScenarioKind, ScenarioParams};
        let mut notes = BTreeSet::new();
        let mut templates = BTreeSet::new();
        for seed in 0..6u64 {
            for kind in ScenarioKind::ALL {
                let start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
                for e in generate(kind, &ScenarioParams::new(seed, start)).emissions {
                    let Emission::Apply(ev) = e.emission else { continue };
                    let note = ev.message.clone().unwrap_or_default();
                    let t = template(&note);
                    let obj = &ev.involved_object;
                    for secret in [obj.name.as_deref(), obj.uid.as_deref(), Some("sim-1"), Some("10.42."), Some("registry.")] {
                        let secret = secret.unwrap_or_default();
                        assert!(secret.len() < 4 || !t.contains(secret), "{secret:?} kept in {t:?} (from {note:?})");
                    }
                    templates.insert((ev.reason.clone().unwrap_or_default(), t));
                    notes.insert(note);
                }
            }
        }
        assert!(notes.len() > 1000, "{} distinct messages", notes.len());
        assert!(templates.len() < 60, "{} templates: {templates:#?}", templates.len());
    }
}
