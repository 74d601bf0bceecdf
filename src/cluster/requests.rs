//! Requests a node makes of the others and waits on: every answer counted against the number of
//! nodes, a per-request timeout on the caller's clock, the answers so far kept for the timeout
//! error (`shared/protocols/redis-cluster.md` §2.5).
//!
//! The rules are the reference's: `allRooms` and `fetchSockets` count this node as the first
//! answer and complete at the node count; `serverSideEmit` with an ack waits for one answer per
//! other node. The node count is not known when a request starts: the transport counts the
//! subscribers of the request channel (`PUBSUB NUMSUB`) and reports it with
//! [`Requests::set_nodes`]; until then answers are kept and nothing completes. (Broadcasts with
//! acks wait in the server's ack table, beside their local recipients.)

use super::classic::{RemoteSocket, Response};
use crate::timers::deadline;
use rmpv::Value;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// What a request collects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Collected {
    /// Room names, deduplicated, sorted.
    AllRooms(BTreeSet<String>),
    /// Sockets of every node.
    Fetch(Vec<RemoteSocket>),
    /// One answer per other node.
    ServerSideEmit(Vec<Value>),
}

/// A request that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Its id.
    pub request_id: String,
    /// The caller's handle for it.
    pub handle: u64,
    /// What it collected (all of it, or what came before the timeout).
    pub collected: Collected,
    /// Answers from other nodes it got, and expected (`None`: the node count never came).
    pub answers: (usize, Option<usize>),
    /// Whether the timeout ended it.
    pub timed_out: bool,
}

#[derive(Debug)]
struct Pending {
    handle: u64,
    collected: Collected,
    /// Answers of other nodes counted so far.
    answers: usize,
    /// Answers of other nodes that complete it, once the node count is known.
    expected: Option<usize>,
}

/// Every request this node waits on. Bounded by the caller, which starts at most
/// `ClusterConfig::max_requests` at a time; each keeps at most `max_items` of what it collects
/// (sockets, rooms, answers: another node can send any number), counting the rest in
/// [`dropped`](Self::dropped). An answer not kept still counts towards completion.
#[derive(Debug)]
pub struct Requests {
    pending: HashMap<String, Pending>,
    due: BinaryHeap<Reverse<(Instant, String)>>,
    max_items: usize,
    dropped: u64,
}

impl Default for Requests {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ITEMS)
    }
}

/// What a request keeps at most, by default.
pub const DEFAULT_MAX_ITEMS: usize = 100_000;

impl Collected {
    /// Drops what is over `max` items; returns how many went.
    fn cap(&mut self, max: usize) -> u64 {
        let over = match self {
            Collected::AllRooms(rooms) => {
                let over = rooms.len().saturating_sub(max);
                for _ in 0..over {
                    rooms.pop_last();
                }
                over
            }
            Collected::Fetch(sockets) => {
                let over = sockets.len().saturating_sub(max);
                sockets.truncate(max);
                over
            }
            Collected::ServerSideEmit(answers) => {
                let over = answers.len().saturating_sub(max);
                answers.truncate(max);
                over
            }
        };
        over as u64
    }
}

impl Requests {
    /// No request yet; each will keep at most `max_items` of what it collects.
    pub fn new(max_items: usize) -> Self {
        Requests {
            pending: HashMap::new(),
            due: BinaryHeap::new(),
            max_items,
            dropped: 0,
        }
    }

    /// Items not kept because a request held `max_items` already.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Starts waiting on `request_id` for at most `timeout` (too large for the clock: no
    /// timeout). `local` is what this node contributes itself.
    pub fn start(
        &mut self,
        now: Instant,
        request_id: String,
        handle: u64,
        local: Collected,
        timeout: Duration,
    ) {
        if let Some(at) = deadline(now, timeout) {
            self.due.push(Reverse((at, request_id.clone())));
        }
        self.pending.insert(
            request_id,
            Pending {
                handle,
                collected: local,
                answers: 0,
                expected: None,
            },
        );
    }

    /// The cluster has `nodes` nodes, this one included. Returns the request if that completes
    /// it (a cluster of one, or every answer came before the count).
    pub fn set_nodes(&mut self, request_id: &str, nodes: usize) -> Option<Finished> {
        let p = self.pending.get_mut(request_id)?;
        p.expected = Some(nodes.saturating_sub(1));
        self.complete(request_id)
    }

    /// Whether `request_id` is one of this node's pending requests (its own echo is dropped).
    pub fn is_pending(&self, request_id: &str) -> bool {
        self.pending.contains_key(request_id)
    }

    /// A response arrived. Returns the request if it is now complete; answers to requests
    /// that ended, or never were, are ignored.
    pub fn on_response(&mut self, response: Response) -> Option<Finished> {
        let (request_id, taken) = match response {
            Response::AllRooms { request_id, rooms } => {
                let taken = self.answer(&request_id, |c| match c {
                    Collected::AllRooms(all) => {
                        all.extend(rooms);
                        true
                    }
                    _ => false,
                });
                (request_id, taken)
            }
            // `sockets: []` reads as either answer: it is a `fetchSockets` one if that is
            // what waits.
            Response::Sockets {
                request_id,
                sockets,
            } if sockets.is_empty() => {
                let taken = self.answer(&request_id, |c| matches!(c, Collected::Fetch(_)));
                (request_id, taken)
            }
            Response::Fetch {
                request_id,
                sockets,
            } => {
                let taken = self.answer(&request_id, |c| match c {
                    Collected::Fetch(all) => {
                        all.extend(sockets);
                        true
                    }
                    _ => false,
                });
                (request_id, taken)
            }
            Response::ServerSideEmit { request_id, data } => {
                let taken = self.answer(&request_id, |c| match c {
                    Collected::ServerSideEmit(all) => {
                        all.push(data);
                        true
                    }
                    _ => false,
                });
                (request_id, taken)
            }
            _ => return None,
        };
        if taken {
            self.complete(&request_id)
        } else {
            None
        }
    }

    /// Counts one answer to `request_id` if `take` accepts it into what the request collects
    /// (an answer of the wrong kind is not one).
    fn answer(&mut self, request_id: &str, take: impl FnOnce(&mut Collected) -> bool) -> bool {
        let Some(p) = self.pending.get_mut(request_id) else {
            return false;
        };
        let taken = take(&mut p.collected);
        if taken {
            p.answers += 1;
            self.dropped += p.collected.cap(self.max_items);
        }
        taken
    }

    fn complete(&mut self, request_id: &str) -> Option<Finished> {
        let p = self.pending.get(request_id)?;
        if p.expected.is_none_or(|e| p.answers < e) {
            return None;
        }
        let (id, p) = self.pending.remove_entry(request_id)?;
        Some(p.finish(id, false))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// Ends every request whose timeout passed, with what it collected.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Finished> {
        let mut done = Vec::new();
        while let Some(Reverse((at, _))) = self.due.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.due.pop() else {
                break;
            };
            if let Some(p) = self.pending.remove(&id) {
                done.push(p.finish(id, true));
            }
        }
        done
    }

    /// Requests pending: for bounds and leak checks.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Pending {
    fn finish(self, request_id: String, timed_out: bool) -> Finished {
        Finished {
            request_id,
            handle: self.handle,
            collected: self.collected,
            answers: (self.answers, self.expected),
            timed_out,
        }
    }
}

/// A node uid or request id as the classic adapter makes them (`uid2(6)`): six characters of
/// `A–Z a–z 0–9 - _`, one per random byte.
pub fn uid(rng: &mut dyn crate::RandomSource) -> Result<String, crate::RandomError> {
    const CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = [0u8; 6];
    rng.fill(&mut raw)?;
    Ok(raw
        .iter()
        .map(|b| char::from(CHARS[usize::from(b % 64)]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_cluster_of_one_answers_once_counted() {
        let mut r = Requests::default();
        let now = Instant::now();
        let local = Collected::AllRooms(["a".to_string()].into());
        r.start(now, "x".into(), 1, local.clone(), ms(5000));
        let done = r.set_nodes("x", 1).unwrap();
        assert_eq!(done.collected, local);
        assert_eq!(done.answers, (0, Some(0)));
        assert!(!done.timed_out);
        assert!(r.is_empty());
    }

    #[test]
    fn all_rooms_completes_at_the_node_count_and_dedups() {
        let mut r = Requests::default();
        let now = Instant::now();
        let local = Collected::AllRooms(["a".to_string()].into());
        r.start(now, "q".into(), 7, local, ms(5000));
        assert!(r.is_pending("q"));
        let rooms = |v: &[&str]| Response::AllRooms {
            request_id: "q".into(),
            rooms: v.iter().map(|s| s.to_string()).collect(),
        };
        // Answers before the count are kept.
        assert!(r.on_response(rooms(&["a", "b"])).is_none());
        assert!(r.set_nodes("q", 3).is_none());
        let done = r.on_response(rooms(&["c"])).unwrap();
        assert_eq!(done.handle, 7);
        assert_eq!(
            done.collected,
            Collected::AllRooms(["a", "b", "c"].map(String::from).into())
        );
        // A late answer is ignored.
        assert!(r.on_response(rooms(&["z"])).is_none());
    }

    #[test]
    fn every_answer_before_the_count_completes_at_the_count() {
        let mut r = Requests::default();
        let now = Instant::now();
        r.start(now, "f".into(), 1, Collected::Fetch(vec![]), ms(5000));
        let answer = Response::Fetch {
            request_id: "f".into(),
            sockets: vec![],
        };
        assert!(r.on_response(answer).is_none());
        assert!(r.set_nodes("f", 2).is_some());
    }

    #[test]
    fn a_timeout_gives_what_came() {
        let mut r = Requests::default();
        let now = Instant::now();
        r.start(
            now,
            "e".into(),
            2,
            Collected::ServerSideEmit(vec![]),
            ms(100),
        );
        assert!(r.set_nodes("e", 3).is_none());
        let answer = Response::ServerSideEmit {
            request_id: "e".into(),
            data: Value::from("3301"),
        };
        assert!(r.on_response(answer).is_none());
        assert_eq!(r.poll_timeout(), Some(now + ms(100)));
        assert!(r.handle_timeout(now + ms(99)).is_empty());
        let done = r.handle_timeout(now + ms(100));
        assert_eq!(
            done,
            [Finished {
                request_id: "e".into(),
                handle: 2,
                collected: Collected::ServerSideEmit(vec![Value::from("3301")]),
                answers: (1, Some(2)),
                timed_out: true
            }]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn without_a_count_a_request_ends_only_by_its_timeout() {
        let mut r = Requests::default();
        let now = Instant::now();
        r.start(now, "g".into(), 3, Collected::Fetch(vec![]), ms(10));
        let done = r.handle_timeout(now + ms(10));
        assert_eq!(done[0].answers, (0, None));
    }

    #[test]
    fn no_timeout_means_waiting_until_complete() {
        let mut r = Requests::default();
        let now = Instant::now();
        r.start(now, "f".into(), 1, Collected::Fetch(vec![]), Duration::MAX);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_request_keeps_at_most_its_bound_and_counts_the_rest() {
        let mut r = Requests::new(2);
        let now = Instant::now();
        r.start(
            now,
            "s".into(),
            1,
            Collected::ServerSideEmit(vec![]),
            ms(100),
        );
        r.set_nodes("s", 4);
        let answer = |v: &str| Response::ServerSideEmit {
            request_id: "s".into(),
            data: Value::from(v),
        };
        assert!(r.on_response(answer("a")).is_none());
        assert!(r.on_response(answer("b")).is_none());
        // Over the bound: not kept, counted, and it still completes the request.
        let done = r.on_response(answer("c")).unwrap();
        assert_eq!(
            done.collected,
            Collected::ServerSideEmit(vec![Value::from("a"), Value::from("b")])
        );
        assert_eq!(done.answers, (3, Some(3)));
        assert_eq!(r.dropped(), 1);
    }

    #[test]
    fn uids_have_the_reference_shape() {
        let mut rng = crate::SeededRandom::new(5);
        let u = uid(&mut rng).unwrap();
        assert_eq!(u.len(), 6);
        assert!(u
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
