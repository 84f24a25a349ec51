//! `bench live-diff`: what diffing by value costs a live view per event, next to the least a
//! change tracker could spend on the same event, in the same run.
//!
//! The page is the example app's rooms page: a list of N rooms and a form whose name field
//! changes on every keystroke (`phx-change`). Diffing by value renders the whole page again
//! and compares it with the last render; with the list in a `memo` keyed by the rooms (as the
//! example app has it), the list is compared with its key and kept; a tracker that knew only
//! the name changed would render only the parts that read it (the form) and diff those, the
//! least any change tracking could spend. All three send the same change.
//!
//! ```text
//! bench live-diff [--events E] [--rounds R]
//! ```

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use fawkes::live::{html, memo, MemoCache, Rendered};

#[derive(Clone, PartialEq)]
struct Room {
    id: i64,
    name: String,
}

/// The form: what reads the name and its errors.
fn form(name: &str, errors: &[String]) -> Rendered {
    let invalid = if errors.is_empty() { "false" } else { "true" };
    html!(
        r#"<form id="room-form" phx-change="validate" phx-submit="save" autocomplete="off">
    <label class="field-label" for="room-name">New room</label>
    <div class="row">
      <input class="input" id="room-name" name="room[name]" value="{name}" aria-invalid="{invalid}" placeholder="e.g. design">
      <button class="button" type="submit">Create</button>
    </div>
    {#for error in errors}<p class="error-text room-error">{error}</p>{/for}
  </form>"#
    )
}

/// The whole page, as the rooms view renders it.
fn page(rooms: &[Room], name: &str, errors: &[String]) -> Rendered {
    let form = form(name, errors);
    html!(
        r#"<section class="live-rooms">
  <h1>Rooms</h1>
  <ul id="rooms">{#for room in rooms}<li data-id="{room.id}">{room.name}</li>{/for}</ul>
  {form}
  <p><a id="to-counter" href="/live/counter" data-phx-link="redirect" data-phx-link-state="push">the counter</a></p>
</section>"#
    )
}

/// The page as the example app renders it: the list kept by [`memo`] while the rooms are
/// the same.
fn page_memo(rooms: &Vec<Room>, name: &str, errors: &[String]) -> Rendered {
    let list = memo(rooms, || {
        html!(
            r#"<ul id="rooms">{#for room in rooms}<li data-id="{room.id}">{room.name}</li>{/for}</ul>"#
        )
    });
    let form = form(name, errors);
    html!(
        r#"<section class="live-rooms">
  <h1>Rooms</h1>
  {list}
  {form}
  <p><a id="to-counter" href="/live/counter" data-phx-link="redirect" data-phx-link-state="push">the counter</a></p>
</section>"#
    )
}

/// Runs `events` keystrokes through `step` and returns the time per event and the bytes of
/// the diffs sent.
fn run(events: usize, mut step: impl FnMut(usize) -> usize) -> (Duration, usize) {
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..events {
        bytes += step(i);
    }
    (started.elapsed() / u32::try_from(events).unwrap_or(u32::MAX), bytes)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let (mut events, mut rounds) = (2_000usize, 5usize);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => events = value.parse()?,
            "--rounds" => rounds = value.parse()?,
            _ => bail!("unknown live-diff option `{flag}`"),
        }
    }
    anyhow::ensure!(events > 0 && rounds > 0, "--events and --rounds must be positive");
    let errors: Vec<String> = Vec::new();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "rooms  by_value_us  memo_us  tracked_us  by_value/memo  memo/tracked  diff_bytes_by_value  diff_bytes_memo  diff_bytes_tracked"
    )?;
    for n in [10usize, 100, 500] {
        let rooms: Vec<Room> =
            (0..n).map(|i| Room { id: i as i64 + 1, name: format!("room number {i}") }).collect();
        let (mut by_value, mut memoized, mut tracked) = (Vec::new(), Vec::new(), Vec::new());
        let (mut value_bytes, mut memo_bytes, mut tracked_bytes) = (0, 0, 0);
        for _ in 0..rounds {
            let mut last = page(&rooms, "", &errors);
            let (per_event, bytes) = run(events, |i| {
                let name = format!("typed {i}");
                let next = page(&rooms, &name, &errors);
                let diff = next.diff(&last).map_or(0, |d| d.to_string().len());
                last = next;
                diff
            });
            by_value.push(per_event);
            value_bytes = bytes / events;
            let mut cache = MemoCache::default();
            let mut last = cache.render(|| page_memo(&rooms, "", &errors));
            let (per_event, bytes) = run(events, |i| {
                let name = format!("typed {i}");
                let next = cache.render(|| page_memo(&rooms, &name, &errors));
                let diff = next.diff(&last).map_or(0, |d| d.to_string().len());
                last = next;
                diff
            });
            memoized.push(per_event);
            memo_bytes = bytes / events;
            let mut last = form("", &errors);
            let (per_event, bytes) = run(events, |i| {
                let name = format!("typed {i}");
                let next = form(&name, &errors);
                let diff = next.diff(&last).map_or(0, |d| d.to_string().len());
                last = next;
                diff
            });
            tracked.push(per_event);
            tracked_bytes = bytes / events;
        }
        let (by_value, memoized, tracked) = (median(by_value), median(memoized), median(tracked));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
        writeln!(
            out,
            "{n:>5}  {:>11.2}  {:>7.2}  {:>10.2}  {:>13.1}  {:>12.1}  {value_bytes:>19}  {memo_bytes:>15}  {tracked_bytes:>18}",
            us(by_value),
            us(memoized),
            us(tracked),
            ratio(by_value, memoized),
            ratio(memoized, tracked),
        )?;
    }
    Ok(())
}
