//! A mutation fuzzer for the bytes → validated events path (`envelope::decode`), for
//! machines without a nightly toolchain for `cargo fuzz` (see docs/reliability.md).
//!
//! ```text
//! cargo run --release --example fuzz_decode -- --seconds 600 [--seed 1] [--out target/fuzz-decode]
//! ```
//!
//! Seeds: every line of `examples/demo-events.jsonl`, batches of them, and hand-made edge
//! cases. Each round takes an input from the corpus, applies one to four mutations (byte
//! flips, inserts, deletes, splices, and JSON-aware ones: odd numbers and strings in place
//! of any value, duplicate keys, deep nesting, invalid UTF-8, oversized strings and
//! bodies), and runs it under `catch_unwind`. Beyond "never panics", every outcome is
//! checked against what the store relies on: one outcome per single-event body, a detail
//! on every rejection, events that decode again to themselves, records that survive
//! their JSON round trip through the database, and no NUL in any text the store writes
//! into a `text` column. Inputs that panic or break a check are saved to `--out`. An
//! input that gives an outcome not seen before joins the corpus (a crude coverage signal).

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ecpat_indicators::envelope::{self, Decoded, MAX_BATCH, MAX_BODY};
use ecpat_indicators::indicators::rules::{Contribution, contributions};
use ecpat_indicators::ledger::{self, Before};
use ecpat_indicators::records::{Change, Record};
use serde_json::Value;

struct Args {
    seconds: u64,
    seed: u64,
    out: PathBuf,
}

fn args() -> Args {
    let mut args =
        Args { seconds: 60, seed: 1, out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-decode") };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = pair.get(1).unwrap_or_else(|| panic!("{} needs a value", pair[0]));
        match pair[0].as_str() {
            "--seconds" => args.seconds = value.parse().expect("--seconds takes a number"),
            "--seed" => args.seed = value.parse().expect("--seed takes a number"),
            "--out" => args.out = PathBuf::from(value),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// xorshift64*: fast, reproducible from `--seed`, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// JSON values that sit at the edges of the rules (as JSON text).
const ODD_VALUES: &[&str] = &[
    "0",
    "-1",
    "-0",
    "-0.0",
    "1.5",
    "0.1e1",
    "1e3",
    "1E+2",
    "2019.0",
    "1e400",
    "-1e400",
    "1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1000000000000",
    "1000000000001",
    "123456789012345678901234567890",
    "1989",
    "1990",
    "2100",
    "2101",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "[[]]",
    "{\"\":0}",
    "\"\"",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"\\ud800\"",
    "\"\\udfff\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\u202efr\"",
    "\"\u{202e}ecpat-france\"",
    "\"e\u{301}\u{301}\u{301}\"",
    "\"\u{feff}fr\"",
    "\"ecpat-france\u{200d}\"",
    "\"FR\"",
    "\"fr\"",
    "\"xk\"",
    "\"ZZ\"",
    "\"2019-02-29\"",
    "\"2020-02-29\"",
    "\"1989-12-31\"",
    "\"2101-01-01\"",
    "\"2019-03-01T10:00:00+01:00\"",
    "\"2019-03-01T10:00:00\"",
    "\"+002019-03-01\"",
    "\"2016-12-31T23:59:60Z\"",
    "\"9999-12-31T23:59:59.999999999+23:59\"",
    "\"0000-01-01T00:00:00-23:59\"",
    "\"2019-03-01T10:00:00.1234567891234Z\"",
    "\"1.0\"",
    "\"\\u0031.0\"",
    "\"1.0 \"",
    "\"application/json\"",
    "\"application/json; charset=utf-8\"",
    "\"org.ecpat.record.withdrawn\"",
    "\"social_post\"",
    "\"national\"",
];

/// Field names of the envelope and of the records.
const KEYS: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "data",
    "datacontenttype",
    "subject",
    "platform",
    "post_id",
    "member",
    "published_at",
    "publication_id",
    "metrics",
    "likes",
    "shares",
    "views",
    "title",
    "scope",
    "countries",
    "themes",
    "contributed",
    "published_on",
    "mechanism",
    "country",
    "submitted_on",
    "members",
    "taken_up",
    "decided_on",
    "paragraph",
    "story_id",
    "global_advocacy",
    "record_type",
    "key",
    "year",
    "manifestations",
    "beneficiaries",
    "held_on",
    "organisation",
    "organisation_kind",
    "channel",
    "regular",
    "date",
    "activity",
];

const EVENT_TYPES: &[&str] = &[
    "org.ecpat.social.metrics.snapshot",
    "org.ecpat.research.publication.recorded",
    "org.ecpat.un.submission.recorded",
    "org.ecpat.un.recommendation.outcome",
    "org.ecpat.media.story.recorded",
    "org.ecpat.advocacy.initiative.recorded",
    "org.ecpat.survivors.participation.recorded",
    "org.ecpat.children.outreach.recorded",
    "org.ecpat.capacity.training.recorded",
    "org.ecpat.member.expertise.assessed",
    "org.ecpat.record.withdrawn",
];

/// Byte sequences that are not UTF-8 (lone bytes, an overlong NUL, an encoded surrogate, a cut sequence).
const BAD_UTF8: &[&[u8]] =
    &[b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80"];

/// Long strings, each just over or at a limit of docs/events.md (as JSON text).
fn long_value(rng: &mut Rng) -> String {
    let (unit, count) =
        *rng.pick(&[("a", 256), ("a", 257), ("é", 256), ("€", 1025), ("x", 2000), ("x", 2001), ("💡", 2001)]);
    format!("\"{}\"", unit.repeat(count))
}

fn seeds() -> Vec<Vec<u8>> {
    let demo = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo-events.jsonl"))
        .expect("examples/demo-events.jsonl is readable");
    let lines: Vec<&str> = demo.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut seeds: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    for chunk in lines.chunks(7) {
        seeds.push(format!("[{}]", chunk.join(",")).into_bytes());
    }
    let one = lines[0];
    let at_limit = vec![one; MAX_BATCH].join(",");
    seeds.push(format!("[{at_limit}]").into_bytes());
    seeds.push(format!("[{at_limit},{one}]").into_bytes());
    for text in ["", " ", "[]", "{}", "null", "[null]", "1e400", "\"\"", "[{}]", "[1,2", "{\"specversion\":\"1.0\"}"] {
        seeds.push(text.as_bytes().to_vec());
    }
    seeds.push(b"[".repeat(100_000));
    seeds.push(format!("{}1{}", "[".repeat(127), "]".repeat(127)).into_bytes());
    seeds.push("{\"a\":".repeat(100_000).into_bytes());
    seeds.push([b"\xef\xbb\xbf", one.as_bytes()].concat());
    seeds.push(one.replacen("{", "{\"specversion\": \"0.3\", ", 1).into_bytes());
    seeds.push(one.replacen("\"1.0\"", "\"1.0\", \"specversion\": \"0.3\"", 1).into_bytes());
    seeds
}

/// Replaces the `n`th node of `value` (depth first) with `new`; returns how many nodes it passed.
fn replace_nth(value: &mut Value, n: &mut usize, new: &Value) -> bool {
    if *n == 0 {
        *value = new.clone();
        return true;
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_nth(v, n, new)),
        Value::Object(map) => map.values_mut().any(|v| replace_nth(v, n, new)),
        _ => false,
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// An odd value as JSON text: from the list, a long string, or an event type.
fn odd_value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => long_value(rng),
        1 => format!("\"{}\"", rng.pick(EVENT_TYPES)),
        _ => (*rng.pick(ODD_VALUES)).to_owned(),
    }
}

/// Positions of a byte in `input`.
fn positions(input: &[u8], byte: u8) -> Vec<usize> {
    input.iter().enumerate().filter(|(_, b)| **b == byte).map(|(i, _)| i).collect()
}

/// One mutation; `other` is another corpus entry, for splicing.
fn mutate(input: &mut Vec<u8>, other: &[u8], rng: &mut Rng) -> &'static str {
    let len = input.len();
    match rng.below(16) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
            "bit flip"
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = *rng.pick(b"{}[]\":,\\0-.eE \x00\x7f");
            "byte set"
        }
        2 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            input.drain(start..end);
            "delete"
        }
        3 => {
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
            "insert random"
        }
        4 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
            "splice"
        }
        5 => {
            let at = rng.below(len + 1);
            input.splice(at..at, rng.pick(BAD_UTF8).iter().copied());
            "invalid utf-8"
        }
        6 => {
            // A duplicate key: `{"key": odd,` after a random `{`; serde_json keeps the last.
            let opens = positions(input, b'{');
            if opens.is_empty() {
                return "none";
            }
            let at = *rng.pick(&opens);
            let pair = format!("\"{}\": {}, ", rng.pick(KEYS), odd_value(rng));
            input.splice(at + 1..at + 1, pair.into_bytes());
            "duplicate key"
        }
        7 => {
            let depth = *rng.pick(&[127, 128, 129, 1000, 100_000]);
            let at = rng.below(len + 1);
            let (open, close) = if rng.below(2) == 0 { ("[", "]") } else { ("{\"a\":", "}") };
            let closing = if rng.below(2) == 0 { close.repeat(depth) } else { String::new() };
            input.splice(at..at, format!("{}{closing}", open.repeat(depth)).into_bytes());
            "deep nesting"
        }
        8..=11 => json_mutation(input, rng),
        12 => {
            let text = String::from_utf8_lossy(input).into_owned();
            let from = *rng.pick(EVENT_TYPES);
            let to = *rng.pick(EVENT_TYPES);
            *input = text.replacen(from, to, 1).into_bytes();
            "other type"
        }
        13 if len > 0 && rng.below(50) == 0 => {
            // Pad with spaces to just under, at, or just over the size limit.
            let target = MAX_BODY - 1 + rng.below(3);
            input.resize(target.max(len), b' ');
            "size limit"
        }
        14 if !other.is_empty() && other.first() != Some(&b'[') => {
            let text = String::from_utf8_lossy(input);
            let item = String::from_utf8_lossy(other);
            *input = if text.trim_start().starts_with('[') {
                text.trim_end().trim_end_matches(']').to_owned() + "," + &item + "]"
            } else {
                format!("[{text},{item}]")
            }
            .into_bytes();
            "batch"
        }
        _ => {
            let start = rng.below(len + 1);
            let end = (start + rng.below(64)).min(len);
            let copy = input[start..end].to_vec();
            input.splice(start..start, copy);
            "duplicate range"
        }
    }
}

/// Replaces a random node of the parsed JSON with an odd value, or drops a key.
fn json_mutation(input: &mut Vec<u8>, rng: &mut Rng) -> &'static str {
    let Ok(mut value) = serde_json::from_slice::<Value>(input) else { return "none" };
    if rng.below(4) == 0 {
        let mut n = rng.below(count_nodes(&value));
        let pick = rng.next() as usize;
        if !drop_key(&mut value, &mut n, pick) {
            return "none";
        }
        *input = value.to_string().into_bytes();
        return "drop key";
    }
    let text = odd_value(rng);
    let Ok(new) = serde_json::from_str::<Value>(&text) else {
        // Not representable as a Value (lone surrogate, 1e400): splice the text in its place.
        let marker = "\"@@odd@@\"";
        let mut n = rng.below(count_nodes(&value));
        replace_nth(&mut value, &mut n, &Value::from("@@odd@@"));
        *input = value.to_string().replacen(marker, &text, 1).into_bytes();
        return "odd value (text)";
    };
    let mut n = rng.below(count_nodes(&value));
    replace_nth(&mut value, &mut n, &new);
    *input = value.to_string().into_bytes();
    "odd value"
}

/// Removes a key from the first object at or after the `n`th node (depth first).
fn drop_key(value: &mut Value, n: &mut usize, pick: usize) -> bool {
    let here = *n == 0;
    *n = n.saturating_sub(1);
    match value {
        Value::Object(map) if here && !map.is_empty() => {
            let key = map.keys().nth(pick % map.len()).cloned().expect("a key");
            map.remove(&key);
            true
        }
        Value::Object(map) => map.values_mut().any(|v| drop_key(v, n, pick)),
        Value::Array(items) => items.iter_mut().any(|v| drop_key(v, n, pick)),
        _ => false,
    }
}

/// What the store and the rest of the worker rely on, beyond "no panic". `None` when all hold.
fn broken_invariant(input: &[u8], decoded: &Decoded) -> Option<String> {
    let outcomes = decoded.events.len() + decoded.rejections.len();
    if outcomes == 0 && !input.trim_ascii_start().starts_with(b"[") {
        return Some("a single-event body gave no outcome".into());
    }
    if !input.trim_ascii_start().starts_with(b"[") && outcomes != 1 {
        return Some(format!("a single-event body gave {outcomes} outcomes"));
    }
    if let Some(r) = decoded.rejections.iter().find(|r| r.detail.trim().is_empty()) {
        return Some(format!("a {} rejection has no detail", r.reason.as_str()));
    }
    for event in &decoded.events {
        let again = envelope::decode(event.raw.as_bytes());
        match again.events.as_slice() {
            [same] if same.source == event.source && same.id == event.id && same.changes == event.changes => {}
            _ => return Some(format!("event {:?} does not decode again to itself", event.id)),
        }
        for text in [&event.source, &event.id] {
            if text.contains('\0') {
                return Some("NUL in source or id (a text column)".into());
            }
        }
        for change in &event.changes {
            let record = match change {
                Change::Upsert(record) => record,
                Change::Withdraw(key) if key.key.contains('\0') => return Some("NUL in a withdrawn key".into()),
                Change::WithdrawPost(post) if post.contains('\0') => return Some("NUL in a post key".into()),
                _ => continue,
            };
            let stored = serde_json::to_string(record).expect("records serialize");
            match serde_json::from_str::<Record>(&stored) {
                Ok(back) if &back == record => {}
                _ => return Some(format!("record {stored} does not survive its JSON round trip")),
            }
            if record.key().key.contains('\0') || record.group().is_some_and(|g| g.contains('\0')) {
                return Some("NUL in a record key (a text column)".into());
            }
            for contribution in contributions(record) {
                let (key, item) = match &contribution {
                    Contribution::Sum(key, _) => (key, ""),
                    Contribution::Distinct(key, item) => (key, item.as_str()),
                };
                if key.key.contains('\0') || item.contains('\0') {
                    return Some("NUL in a tally key or item (a text column)".into());
                }
            }
        }
    }
    let events: Vec<(i64, &envelope::Event)> = decoded.events.iter().zip(1..).map(|(e, seq)| (seq, e)).collect();
    let before = Before::default();
    ledger::plan(&before, &events).delta(&before, ecpat_indicators::framework::built_in());
    None
}

/// A short class of an outcome: the reason and the start of the detail, digits folded.
fn outcome_class(decoded: &Decoded) -> Vec<String> {
    let mut classes: Vec<String> = decoded
        .rejections
        .iter()
        .map(|r| {
            let detail =
                r.detail.strip_prefix("batch event ").map_or(&r.detail[..], |d| d.split_once(": ").map_or(d, |x| x.1));
            let short: String = detail
                .split(['"', '{', '['])
                .next()
                .unwrap_or("")
                .chars()
                .take(70)
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            format!("{}: {}", r.reason.as_str(), short.trim_end())
        })
        .collect();
    classes.extend(decoded.events.iter().map(|e| format!("accepted: {}", e.event_type.as_str())));
    classes
}

fn save(out: &std::path::Path, kind: &str, input: &[u8], note: &str) -> PathBuf {
    std::fs::create_dir_all(out).expect("the output folder can be created");
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let path = out.join(format!("{kind}-{hash:016x}.bin"));
    std::fs::write(&path, input).expect("the input can be saved");
    std::fs::write(path.with_extension("txt"), note).expect("the note can be saved");
    path
}

fn main() {
    let args = args();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(args.seed.max(1));
    let mut corpus = seeds();
    let seed_count = corpus.len();
    let mut seen_classes: HashSet<String> = HashSet::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut mutations: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut executions, mut panics, mut broken, mut max_detail) = (0u64, 0u64, 0u64, 0usize);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut next_report = start + Duration::from_secs(30);
    let mut queue: Vec<Vec<u8>> = corpus.clone();
    while Instant::now() < deadline {
        let input = match queue.pop() {
            Some(seed) => seed,
            None => {
                let mut input = rng.pick(&corpus).clone();
                for _ in 0..1 + rng.below(4) {
                    let other = rng.pick(&corpus).clone();
                    *mutations.entry(mutate(&mut input, &other, &mut rng)).or_default() += 1;
                }
                if input.len() > 2 * MAX_BODY {
                    input.truncate(2 * MAX_BODY);
                }
                input
            }
        };
        executions += 1;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let decoded = envelope::decode(&input);
            let broken = broken_invariant(&input, &decoded);
            (decoded, broken)
        }));
        let (decoded, problem) = match result {
            Ok(pair) => pair,
            Err(payload) => {
                panics += 1;
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let path = save(&args.out, "panic", &input, &message);
                eprintln!("PANIC: {message} (input saved to {})", path.display());
                continue;
            }
        };
        if let Some(problem) = problem {
            broken += 1;
            let path = save(&args.out, "invariant", &input, &problem);
            eprintln!("BROKEN: {problem} (input saved to {})", path.display());
        }
        max_detail = max_detail.max(decoded.rejections.iter().map(|r| r.detail.len()).max().unwrap_or(0));
        let mut new_class = false;
        for class in outcome_class(&decoded) {
            *counts.entry(class.clone()).or_default() += 1;
            new_class |= seen_classes.insert(class);
        }
        if new_class && input.len() <= 64 * 1024 && corpus.len() < 20_000 {
            corpus.push(input);
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(30);
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "[{secs:>5.0} s] {executions} executions ({:.0}/s), {} outcome classes, corpus {}, panics {panics}, broken {broken}",
                executions as f64 / secs,
                seen_classes.len(),
                corpus.len()
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("seconds: {secs:.0}");
    println!("seed: {}", args.seed);
    println!("executions: {executions} ({:.0}/s)", executions as f64 / secs);
    println!("corpus: {seed_count} seeds, {} at the end", corpus.len());
    println!("panics: {panics}");
    println!("broken invariants: {broken}");
    println!("longest rejection detail: {max_detail} bytes");
    println!("mutations applied:");
    for (name, n) in &mutations {
        println!("  {n:>10}  {name}");
    }
    let reasons: BTreeMap<&str, u64> = counts.iter().fold(BTreeMap::new(), |mut acc, (class, n)| {
        *acc.entry(class.split(':').next().unwrap_or("")).or_default() += n;
        acc
    });
    println!("outcomes by reason:");
    for (reason, n) in &reasons {
        println!("  {n:>10}  {reason}");
    }
    println!("distinct outcome classes: {}", counts.len());
    for (class, n) in &counts {
        println!("  {n:>10}  {class}");
    }
    if panics > 0 || broken > 0 {
        std::process::exit(1);
    }
}
