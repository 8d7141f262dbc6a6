//! Every transition of the watch machine, one step at a time, over a scripted API
//! server ([`super::script`]) under tokio's paused clock: waits are checked to the
//! millisecond without taking any real time.

use super::script::{added, bookmark, broken, ev, gone, page, throttled, Line, Req, Script};
use super::*;
use schemas::records::WatchKind::{Added, Relisted};

const IDLE: Duration = Duration::from_secs(320);

fn machine(script: &Script) -> Machine<Script> {
    Machine::new(script.clone(), 290, IDLE)
}

/// Step until the machine reaches a state `stop` accepts (at most 50 steps),
/// collecting the outputs on the way.
async fn run_until(m: &mut Machine<Script>, mut state: State, stop: impl Fn(&State) -> bool) -> (Vec<Output>, State) {
    let mut outs = Vec::new();
    for _ in 0..50 {
        let (out, next) = m.step(state).await;
        outs.extend(out);
        state = next;
        if stop(&state) {
            return (outs, state);
        }
    }
    panic!("no stop state within 50 steps; at {state:?}");
}

fn is_watch(s: &State) -> bool {
    matches!(s, State::Watch { .. })
}

fn relisted(rv: u64, cursor_rv: &str) -> Output {
    Output::Event { kind: Relisted, event: Box::new(ev(rv)), cursor_rv: cursor_rv.into() }
}

fn opened(rv: &str) -> Output {
    Output::Progress { rv: rv.into(), why: Progress::Opened }
}

fn watch_rv(s: &State) -> &str {
    match s {
        State::Watch { rv } | State::Watching { rv, .. } => rv,
        other => panic!("not watching: {other:?}"),
    }
}

fn backoff_delay(s: &State) -> Duration {
    match s {
        State::Backoff { delay, .. } => *delay,
        other => panic!("not backing off: {other:?}"),
    }
}

/// No cursor: list every page of one snapshot, hand every object on as RELISTED
/// with an empty cursor (a crash mid-list relists), then watch from the list's RV.
#[tokio::test(start_paused = true)]
async fn first_start_lists_every_page_then_watches_from_the_list_rv() {
    let script = Script::default();
    script.list(page(&[3, 1], 9, Some("p2"))).list(page(&[], 11, Some("p3"))).list(page(&[7], 12, None));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::start(None), is_watch).await;
    assert_eq!(
        outs,
        vec![
            Output::Note(Note::Relisting { cursor: None }),
            relisted(3, ""),
            relisted(1, ""),
            relisted(7, ""),
            Output::Progress { rv: "9".into(), why: Progress::Listed { published: 3 } },
        ]
    );
    assert_eq!(watch_rv(&state), "9", "the first page's RV is the snapshot's");
    let conts: Vec<_> = script.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(conts, [None, Some("p2"), Some("p3")].map(|c| Req::List { cont: c.map(Into::into) }));
}

/// A stored cursor: no list, a watch from exactly that resourceVersion (with the
/// configured server timeout); each event's cursor is its own RV.
#[tokio::test(start_paused = true)]
async fn a_stored_cursor_resumes_with_a_watch_from_it() {
    let script = Script::default();
    script.watch(Ok(vec![added(43), added(45)]));
    let mut m = machine(&script);
    let (out, state) = m.step(State::start(Some("42".into()))).await;
    assert_eq!(out, Some(opened("42")));
    assert_eq!(script.requests()[0].1, Req::Watch { rv: "42".into(), timeout_secs: 290 });
    let (out, state) = m.step(state).await;
    assert_eq!(out, Some(Output::Event { kind: Added, event: Box::new(ev(43)), cursor_rv: "43".into() }));
    let (_, state) = m.step(state).await;
    assert_eq!(watch_rv(&state), "45");
}

/// A relist from a cursor (after 410 or desync) hands on only the objects newer
/// than the cursor, each carrying the old cursor as its resume point.
#[tokio::test(start_paused = true)]
async fn a_relist_from_a_cursor_hands_on_only_newer_objects() {
    let script = Script::default();
    script.list(page(&[8, 12, 10, 15], 20, None));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Relist { cursor: Some("10".into()) }, is_watch).await;
    assert_eq!(
        outs,
        vec![
            Output::Note(Note::Relisting { cursor: Some("10".into()) }),
            relisted(12, "10"),
            relisted(15, "10"),
            Output::Progress { rv: "20".into(), why: Progress::Listed { published: 2 } },
        ]
    );
    assert_eq!(watch_rv(&state), "20");
}

/// The list's RV below the cursor (etcd restored from a backup): reported once, and
/// every listed object is handed on, on every page.
#[tokio::test(start_paused = true)]
async fn an_rv_reset_republishes_the_whole_list() {
    let script = Script::default();
    script.list(page(&[5], 20, Some("p2"))).list(page(&[7], 21, None));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Relist { cursor: Some("100".into()) }, is_watch).await;
    assert_eq!(
        outs,
        vec![
            Output::Note(Note::Relisting { cursor: Some("100".into()) }),
            Output::Note(Note::RvReset { cursor: "100".into(), list_rv: "20".into() }),
            relisted(5, "100"),
            relisted(7, "100"),
            Output::Progress { rv: "20".into(), why: Progress::Listed { published: 2 } },
        ]
    );
    assert_eq!(watch_rv(&state), "20");
}

/// 410 Gone on opening the watch: relist from the cursor at once, no backoff.
#[tokio::test(start_paused = true)]
async fn gone_on_opening_relists_at_once() {
    let script = Script::default();
    script.watch(Err(gone()));
    let mut m = machine(&script);
    let t0 = Instant::now();
    let (out, state) = m.step(State::Watch { rv: "5".into() }).await;
    assert_eq!(out, Some(Output::Note(Note::Gone { rv: "5".into(), message: "too old resource version".into() })));
    assert!(matches!(state, State::Relist { cursor: Some(ref c) } if c == "5"), "{state:?}");
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

/// 410 in the stream (an ERROR line) after some events: relist from the last
/// resourceVersion handed on.
#[tokio::test(start_paused = true)]
async fn gone_in_the_stream_relists_from_the_last_rv_handed_on() {
    let script = Script::default();
    script.watch(Ok(vec![added(6), added(8), Line::Send(Err(gone()))]));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Watch { rv: "5".into() }, |s| matches!(s, State::Relist { .. })).await;
    assert_eq!(outs.len(), 4, "opened, two events, the note: {outs:?}");
    assert!(matches!(outs[3], Output::Note(Note::Gone { ref rv, .. }) if rv == "8"));
    assert!(matches!(state, State::Relist { cursor: Some(ref c) } if c == "8"));
}

/// The stale-RV empty 200 (kubernetes #104171): back off and re-watch twice, then
/// treat the third as a desync and relist.
#[tokio::test(start_paused = true)]
async fn empty_watches_back_off_then_relist_on_the_third() {
    let script = Script::default();
    script.watch(Ok(vec![])).watch(Ok(vec![])).watch(Ok(vec![]));
    let mut m = machine(&script);
    let mut state = State::Watch { rv: "5".into() };
    for n in 1..=EMPTY_WATCHES_BEFORE_RELIST {
        let (out, next) = m.step(state).await;
        assert_eq!(out, Some(opened("5")));
        let (out, next) = m.step(next).await;
        let relist = n == EMPTY_WATCHES_BEFORE_RELIST;
        assert_eq!(out, Some(Output::Note(Note::Empty { rv: "5".into(), relist })));
        if relist {
            assert!(matches!(next, State::Relist { cursor: Some(ref c) } if c == "5"), "{next:?}");
            break;
        }
        let delay = backoff_delay(&next);
        assert!(delay >= Duration::from_millis(400), "never a busy loop: {delay:?}");
        let t0 = Instant::now();
        let (out, next) = m.step(next).await;
        assert_eq!((out, t0.elapsed()), (None, delay));
        state = next;
    }
    let at: Vec<_> = script.requests().into_iter().map(|(t, _)| t).collect();
    assert!(at.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(400)), "{at:?}");
}

/// The server ends a watch at its timeout: re-watch from the last RV at once. A
/// watch that ends with nothing, but only after a while, is such an end, not an
/// empty 200.
#[tokio::test(start_paused = true)]
async fn a_watch_the_server_ends_is_reopened_at_once() {
    let script = Script::default();
    script.watch(Ok(vec![added(6), Line::Wait(Duration::from_secs(290))])).watch(Ok(vec![Line::Wait(Duration::from_secs(290))]));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Watch { rv: "5".into() }, is_watch).await;
    assert_eq!(outs.last(), Some(&Output::Note(Note::Ended { rv: "6".into() })));
    assert_eq!(watch_rv(&state), "6");
    let (outs, state) = run_until(&mut m, state, is_watch).await;
    assert_eq!(outs, vec![opened("6"), Output::Note(Note::Ended { rv: "6".into() })]);
    assert_eq!(watch_rv(&state), "6");
}

/// A bookmark moves the resourceVersion without an event; the next watch starts there.
#[tokio::test(start_paused = true)]
async fn a_bookmark_moves_the_rv_without_an_event() {
    let script = Script::default();
    script.watch(Ok(vec![bookmark(30)])).watch(Ok(vec![Line::Hang]));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Watch { rv: "5".into() }, is_watch).await;
    assert_eq!(
        outs,
        vec![
            opened("5"),
            Output::Progress { rv: "30".into(), why: Progress::Bookmark },
            Output::Note(Note::Ended { rv: "30".into() }),
        ]
    );
    m.step(state).await;
    assert_eq!(script.requests()[1].1, Req::Watch { rv: "30".into(), timeout_secs: 290 });
}

/// A watch that never answers is left after exactly the idle timeout, for a re-watch
/// from the same resourceVersion; the reopened watch is not progress until it
/// delivers something. Something arriving just before the bound keeps the watch.
#[tokio::test(start_paused = true)]
async fn a_silent_watch_ends_after_the_idle_timeout() {
    let script = Script::default();
    script.watch(Ok(vec![Line::Hang]));
    script.watch(Ok(vec![Line::Wait(IDLE - Duration::from_millis(1)), bookmark(9), Line::Hang]));
    script.watch(Ok(vec![Line::Hang]));
    let mut m = machine(&script);
    let (_, state) = m.step(State::Watch { rv: "7".into() }).await;
    let t0 = Instant::now();
    let (out, state) = m.step(state).await;
    assert_eq!(t0.elapsed(), IDLE);
    assert_eq!(out, Some(Output::Note(Note::Idle { rv: "7".into() })));
    assert_eq!(watch_rv(&state), "7");
    let (out, state) = m.step(state).await;
    assert_eq!(out, None, "a watch reopened after silence is not progress yet");
    let (out, state) = m.step(state).await;
    assert_eq!(out, Some(Output::Progress { rv: "9".into(), why: Progress::Bookmark }));
    assert!(matches!(state, State::Watching { .. }));
    let (out, state) = m.step(state).await;
    assert_eq!(out, Some(Output::Note(Note::Idle { rv: "9".into() })));
    let (out, _) = m.step(state).await;
    assert_eq!(out, None, "still silent after the last delivery: no progress");
    // Once something arrived, a later reopen counts again.
    let script = Script::default();
    script.watch(Ok(vec![Line::Hang])).watch(Ok(vec![added(8)])).watch(Ok(vec![Line::Hang]));
    let mut m = machine(&script);
    let (_, s) = m.step(State::Watch { rv: "7".into() }).await;
    let (_, s) = m.step(s).await; // idle
    let (out, s) = m.step(s).await;
    assert_eq!(out, None);
    let (_, s) = m.step(s).await; // the event
    let (_, s) = m.step(s).await; // ended
    assert!(is_watch(&s));
    let (out, _) = m.step(s).await;
    assert_eq!(out, Some(opened("8")));
}

/// 429 with Retry-After: the wait is the server's, not the shorter backoff step.
#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let script = Script::default();
    script.watch(Err(throttled(7))).watch(Ok(vec![Line::Hang]));
    let mut m = machine(&script);
    let (out, state) = m.step(State::Watch { rv: "5".into() }).await;
    let Some(Output::Note(Note::Failed { request: Request::OpenWatch, retry_in, .. })) = out else { panic!("{out:?}") };
    assert_eq!(retry_in, Duration::from_secs(7));
    let (_, state) = m.step(state).await;
    let (out, _) = m.step(state).await;
    assert_eq!(out, Some(opened("5")));
    let at: Vec<_> = script.requests().into_iter().map(|(t, _)| t).collect();
    assert_eq!(at[1] - at[0], Duration::from_secs(7));
}

/// Consecutive failures wait longer and longer (×2 per step, ±50 % jitter, capped
/// at 30 s); a watch that delivers resets the backoff to its first step.
#[tokio::test(start_paused = true)]
async fn backoff_grows_on_failures_and_resets_after_success() {
    let script = Script::default();
    for _ in 0..8 {
        script.watch(Err(broken()));
    }
    script.watch(Ok(vec![added(6), Line::Send(Err(broken()))]));
    let mut m = machine(&script);
    let mut state = State::Watch { rv: "5".into() };
    let mut delays = Vec::new();
    for _ in 0..8 {
        let (out, next) = m.step(state).await;
        assert!(matches!(out, Some(Output::Note(Note::Failed { request: Request::OpenWatch, .. }))));
        delays.push(backoff_delay(&next));
        let (_, next) = m.step(next).await;
        state = next;
    }
    let bases = [800u128, 1600, 3200, 6400, 12800, 25600, 30000, 30000];
    for (d, base) in delays.iter().zip(bases) {
        assert!(d.as_millis() >= base / 2 && d.as_millis() <= (base * 3 / 2).min(30000), "{delays:?}");
    }
    // The next watch delivers an event, then breaks: back to the first step.
    let (outs, state) = run_until(&mut m, state, |s| matches!(s, State::Backoff { .. })).await;
    assert!(matches!(outs[1], Output::Event { .. }));
    assert!(backoff_delay(&state) <= Duration::from_millis(1200), "{state:?}");
}

/// A failed page (an expired continue token, a dropped connection) backs off and
/// restarts the list from its first page, without announcing a new relist.
#[tokio::test(start_paused = true)]
async fn a_failed_page_restarts_the_list_from_the_first_page() {
    let script = Script::default();
    script.list(page(&[1], 9, Some("p2"))).list(Err(gone())).list(page(&[1, 2], 10, None));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::start(None), is_watch).await;
    let notes: Vec<_> = outs.iter().filter(|o| matches!(o, Output::Note(_))).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(matches!(notes[1], Output::Note(Note::Failed { request: Request::List, .. })));
    assert_eq!(outs.iter().filter(|o| matches!(o, Output::Event { .. })).count(), 3, "the first object again, then both");
    assert_eq!(watch_rv(&state), "10", "the new snapshot's RV");
    let conts: Vec<_> = script.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(conts, [None, Some("p2"), None].map(|c| Req::List { cont: c.map(Into::into) }));
}

/// A dropped connection mid-watch (and any other error, e.g. 403 until RBAC is
/// fixed) backs off and re-watches from the last RV: errors never end the machine.
#[tokio::test(start_paused = true)]
async fn errors_back_off_and_rewatch_from_the_last_rv() {
    let script = Script::default();
    let forbidden = SourceError::from_status(&kube::core::Status::failure("forbidden", "Forbidden").with_code(403));
    script.watch(Ok(vec![added(6), Line::Send(Err(broken()))])).watch(Err(forbidden)).watch(Ok(vec![Line::Hang]));
    let mut m = machine(&script);
    let (outs, state) = run_until(&mut m, State::Watch { rv: "5".into() }, |s| matches!(s, State::Watching { .. }) && script.requests().len() == 3).await;
    let failed: Vec<_> = outs.iter().filter_map(|o| match o {
        Output::Note(Note::Failed { request, .. }) => Some(*request),
        _ => None,
    }).collect();
    assert_eq!(failed, [Request::Stream, Request::OpenWatch]);
    assert_eq!(watch_rv(&state), "6");
    let rvs: Vec<_> = script.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(rvs, ["5", "6", "6"].map(|rv| Req::Watch { rv: rv.into(), timeout_secs: 290 }));
}

#[test]
fn resource_versions_parse_as_numbers() {
    assert_eq!(rv_num("123"), Some(123));
    assert_eq!(rv_num("abc"), None);
    assert!(rv_reset("100", "20") && !rv_reset("20", "100") && !rv_reset("x", "1"));
}
