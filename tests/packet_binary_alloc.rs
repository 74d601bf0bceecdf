//! Memory for binary arguments, counted by the allocator: deserializing an event with ten 1 MiB
//! attachments into `Bytes` fields costs about the attachments' size once (each field's copy),
//! not a JSON number per byte as the `serde_json::Value` round trip this replaced did.
//!
//! One test in this binary, so that no other test allocates while it measures.

use bytes::Bytes;
use roomcast::packet::{Decoder, Event, Packet};
use roomcast::{Limits, Str};
use serde::Deserialize;
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block arriving before the old one leaves: the worst case.
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result and the most memory live at once during it, beyond what was
/// live before it (the result's own memory included: it is still live at the end).
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed) - before)
}

const MIB: usize = 1 << 20;
const COUNT: usize = 10;

#[derive(Deserialize)]
struct Ten {
    f0: Bytes,
    f1: Bytes,
    f2: Bytes,
    f3: Bytes,
    f4: Bytes,
    f5: Bytes,
    f6: Bytes,
    f7: Bytes,
    f8: Bytes,
    f9: Bytes,
}

impl Ten {
    fn fields(&self) -> [&Bytes; COUNT] {
        [
            &self.f0, &self.f1, &self.f2, &self.f3, &self.f4, &self.f5, &self.f6, &self.f7,
            &self.f8, &self.f9,
        ]
    }
}

/// A binary event with ten 1 MiB attachments; `fields`: as one object `{"f0":…,…}` holding the
/// placeholders, else as ten arguments.
fn ten_mib_event(fields: bool) -> (Event, Vec<Bytes>) {
    let attachments: Vec<Bytes> = (0..COUNT)
        .map(|i| Bytes::from(vec![i as u8; MIB]))
        .collect();
    let ph = |i| format!(r#"{{"_placeholder":true,"num":{i}}}"#);
    let args = if fields {
        let members: Vec<String> = (0..COUNT).map(|i| format!(r#""f{i}":{}"#, ph(i))).collect();
        format!("{{{}}}", members.join(","))
    } else {
        (0..COUNT).map(ph).collect::<Vec<_>>().join(",")
    };
    let header = format!(r#"5{COUNT}-["upload",{args}]"#);
    let mut decoder = Decoder::new(Limits::default());
    assert!(decoder.push_text(Str::from(header)).unwrap().is_none());
    let mut packet = None;
    for a in &attachments {
        packet = decoder.push_binary(a.clone()).unwrap();
    }
    let Some(Packet::Event { event, .. }) = packet else {
        panic!("no event")
    };
    (event, attachments)
}

/// The path this crate took before: the whole payload as a `serde_json::Value`, each placeholder
/// replaced by an array of byte values, then `from_value`. Kept here only to measure against.
fn old_path(event: &Event) -> Ten {
    fn restore(v: &mut Value, attachments: &[Bytes]) {
        let index = v.as_object().and_then(|o| {
            (o.get("_placeholder")? == &Value::Bool(true)).then_some(())?;
            usize::try_from(o.get("num")?.as_u64()?).ok()
        });
        if let Some(bytes) = index.and_then(|i| attachments.get(i)) {
            *v = Value::Array(bytes.iter().map(|&b| b.into()).collect());
            return;
        }
        match v {
            Value::Array(items) => items.iter_mut().for_each(|v| restore(v, attachments)),
            Value::Object(map) => map.values_mut().for_each(|v| restore(v, attachments)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(event.data().json()).unwrap();
    restore(&mut value, event.data().attachments());
    if let Value::Array(items) = &mut value {
        items.remove(0);
    }
    let (ten,): (Ten,) = serde_json::from_value(value).unwrap();
    ten
}

#[test]
fn ten_one_mib_attachments_into_bytes_fields_cost_about_their_size_once() {
    let (event, attachments) = ten_mib_event(true);
    let total = COUNT * MIB;

    let (got, new_peak) = peak_during(|| event.args::<(Ten,)>().unwrap().0);
    for (field, a) in got.fields().into_iter().zip(&attachments) {
        assert_eq!(field, a);
    }
    drop(got);
    let (list, _) = ten_mib_event(false);
    let (got, vec_peak) = peak_during(|| list.args::<Vec<Bytes>>().unwrap());
    assert_eq!(got, attachments);
    drop(got);
    // A type mismatch is found before any attachment is copied.
    let (got, error_peak) = peak_during(|| list.args::<Vec<String>>().unwrap_err());
    drop(got);

    let (old, old_peak) = peak_during(|| old_path(&event));
    for (field, a) in old.fields().into_iter().zip(&attachments) {
        assert_eq!(field, a);
    }
    drop(old);

    let ratio = |peak: usize| peak as f64 / total as f64;
    println!(
        "ten 1 MiB attachments into Bytes fields: streaming peak {new_peak} B ({:.3}x the \
         attachments), serde_json::Value path peak {old_peak} B ({:.1}x); as ten arguments \
         into Vec<Bytes>: {vec_peak} B ({:.3}x); refused as strings: {error_peak} B",
        ratio(new_peak),
        ratio(old_peak),
        ratio(vec_peak),
    );
    // The fields' own copies are the attachments' size; anything beyond is bookkeeping.
    assert!(new_peak >= total, "fields not copied? {new_peak}");
    assert!(ratio(new_peak) < 1.05, "streaming peak {new_peak} B");
    assert!(ratio(vec_peak) < 1.05, "Vec<Bytes> peak {vec_peak} B");
    assert!(error_peak < 64 * 1024, "error path peak {error_peak} B");
    assert!(ratio(old_peak) > 10.0, "old path peak {old_peak} B");
}
