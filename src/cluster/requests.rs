//! Requests a node makes of the others and waits on: every answer counted against the number of
//! nodes, a per-request timeout on the caller's clock, the answers so far kept for the timeout
//! error (`shared/protocols/redis-cluster.md` §2.5).
//!
//! The rules are the reference's: `allRooms` and `fetchSockets` count this node as the first
//! answer and complete at the node count; `serverSideEmit` with an ack waits for one answer per
//! other node; a broadcast with acks completes once every node reported its client count
//! (this one included) and as many client acks arrived as the counts add up to.

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
    /// Sockets of the other nodes.
    Fetch(Vec<RemoteSocket>),
    /// One answer per other node.
    ServerSideEmit(Vec<Value>),
    /// The client acks, and the clients reached on every node together.
    BroadcastAck {
        /// The answers.
        acks: Vec<Value>,
        /// Clients reached, summed over the nodes that reported.
        clients: u64,
    },
}

/// A request that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Its id.
    pub request_id: String,
    /// What it collected (all of it, or what came before the timeout).
    pub collected: Collected,
    /// Whether the timeout ended it.
    pub timed_out: bool,
}

#[derive(Debug)]
struct Pending {
    collected: Collected,
    /// Answers counted so far (responses, or for a broadcast: client counts).
    answers: usize,
    /// Answers that complete it.
    expected: usize,
}

/// Every request this node waits on.
#[derive(Debug, Default)]
pub struct Requests {
    pending: HashMap<String, Pending>,
    due: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Requests {
    /// Starts waiting on `request_id`, in a cluster of `nodes` nodes (this one included),
    /// for at most `timeout` (too large for the clock: no timeout). `local` is what this node
    /// contributes itself. Returns the request finished at once when nothing is to be waited
    /// for (a cluster of one).
    pub fn start(
        &mut self,
        now: Instant,
        request_id: String,
        nodes: usize,
        local: Collected,
        timeout: Duration,
    ) -> Option<Finished> {
        let (answers, expected) = match &local {
            // This node's own answer counts as the first.
            Collected::AllRooms(_) | Collected::Fetch(_) => (1, nodes),
            Collected::ServerSideEmit(_) => (0, nodes.saturating_sub(1)),
            // This node reports its client count synchronously: the first count.
            Collected::BroadcastAck { .. } => (1, nodes),
        };
        let pending = Pending {
            collected: local,
            answers,
            expected,
        };
        if pending.is_complete() {
            return Some(pending.finish(request_id, false));
        }
        if let Some(at) = deadline(now, timeout) {
            self.due.push(Reverse((at, request_id.clone())));
        }
        self.pending.insert(request_id, pending);
        None
    }

    /// Whether `request_id` is one of this node's pending requests (its own echo is dropped).
    pub fn is_pending(&self, request_id: &str) -> bool {
        self.pending.contains_key(request_id)
    }

    /// A response arrived. Returns the request if it is now complete; answers to requests
    /// that ended, or never were, are ignored.
    pub fn on_response(&mut self, response: Response) -> Option<Finished> {
        let (id, pending) = match response {
            Response::AllRooms { request_id, rooms } => {
                let p = self.pending.get_mut(&request_id)?;
                let Collected::AllRooms(all) = &mut p.collected else {
                    return None;
                };
                all.extend(rooms);
                p.answers += 1;
                (request_id, p)
            }
            Response::Fetch {
                request_id,
                sockets,
            } => {
                let p = self.pending.get_mut(&request_id)?;
                let Collected::Fetch(all) = &mut p.collected else {
                    return None;
                };
                all.extend(sockets);
                p.answers += 1;
                (request_id, p)
            }
            Response::ServerSideEmit { request_id, data } => {
                let p = self.pending.get_mut(&request_id)?;
                let Collected::ServerSideEmit(all) = &mut p.collected else {
                    return None;
                };
                all.push(data);
                p.answers += 1;
                (request_id, p)
            }
            Response::ClientCount { request_id, count } => {
                let p = self.pending.get_mut(&request_id)?;
                let Collected::BroadcastAck { clients, .. } = &mut p.collected else {
                    return None;
                };
                *clients = clients.saturating_add(count);
                p.answers += 1;
                (request_id, p)
            }
            Response::BroadcastAck { request_id, packet } => {
                let p = self.pending.get_mut(&request_id)?;
                let Collected::BroadcastAck { acks, .. } = &mut p.collected else {
                    return None;
                };
                acks.push(packet);
                (request_id, p)
            }
            _ => return None,
        };
        if !pending.is_complete() {
            return None;
        }
        let pending = self.pending.remove(&id)?;
        Some(pending.finish(id, false))
    }

    /// A client of this node answered a broadcast with acks it started.
    pub fn local_ack(&mut self, request_id: &str, answer: Value) -> Option<Finished> {
        let p = self.pending.get_mut(request_id)?;
        let Collected::BroadcastAck { acks, .. } = &mut p.collected else {
            return None;
        };
        acks.push(answer);
        if !p.is_complete() {
            return None;
        }
        let p = self.pending.remove(request_id)?;
        Some(p.finish(request_id.to_owned(), false))
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

    /// Requests pending: for leak checks.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Pending {
    fn is_complete(&self) -> bool {
        match &self.collected {
            Collected::BroadcastAck { acks, clients } => {
                self.answers >= self.expected && acks.len() as u64 >= *clients
            }
            _ => self.answers >= self.expected,
        }
    }

    fn finish(self, request_id: String, timed_out: bool) -> Finished {
        Finished {
            request_id,
            collected: self.collected,
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
    fn a_cluster_of_one_answers_at_once() {
        let mut r = Requests::default();
        let now = Instant::now();
        let local = Collected::AllRooms(["a".to_string()].into());
        let done = r
            .start(now, "x".into(), 1, local.clone(), ms(5000))
            .unwrap();
        assert_eq!(done.collected, local);
        assert!(!done.timed_out);
        let done = r
            .start(
                now,
                "y".into(),
                1,
                Collected::ServerSideEmit(vec![]),
                ms(5000),
            )
            .unwrap();
        assert_eq!(done.collected, Collected::ServerSideEmit(vec![]));
        assert!(r.is_empty());
    }

    #[test]
    fn all_rooms_completes_at_the_node_count_and_dedups() {
        let mut r = Requests::default();
        let now = Instant::now();
        let local = Collected::AllRooms(["a".to_string()].into());
        assert!(r.start(now, "q".into(), 3, local, ms(5000)).is_none());
        assert!(r.is_pending("q"));
        let rooms = |v: &[&str]| Response::AllRooms {
            request_id: "q".into(),
            rooms: v.iter().map(|s| s.to_string()).collect(),
        };
        assert!(r.on_response(rooms(&["a", "b"])).is_none());
        let done = r.on_response(rooms(&["c"])).unwrap();
        assert_eq!(
            done.collected,
            Collected::AllRooms(["a", "b", "c"].map(String::from).into())
        );
        // A late answer is ignored.
        assert!(r.on_response(rooms(&["z"])).is_none());
    }

    #[test]
    fn a_timeout_gives_what_came() {
        let mut r = Requests::default();
        let now = Instant::now();
        assert!(r
            .start(
                now,
                "e".into(),
                3,
                Collected::ServerSideEmit(vec![]),
                ms(100)
            )
            .is_none());
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
                collected: Collected::ServerSideEmit(vec![Value::from("3301")]),
                timed_out: true
            }]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_broadcast_with_acks_waits_for_every_count_and_every_ack() {
        let mut r = Requests::default();
        let now = Instant::now();
        let local = Collected::BroadcastAck {
            acks: vec![],
            clients: 1,
        };
        assert!(r.start(now, "b".into(), 3, local, ms(1000)).is_none());
        assert!(r.local_ack("b", Value::from("me")).is_none());
        let count = |n| Response::ClientCount {
            request_id: "b".into(),
            count: n,
        };
        assert!(r.on_response(count(0)).is_none());
        assert!(r.on_response(count(2)).is_none());
        let ack = |v: &str| Response::BroadcastAck {
            request_id: "b".into(),
            packet: Value::from(v),
        };
        assert!(r.on_response(ack("x")).is_none());
        let done = r.on_response(ack("y")).unwrap();
        assert_eq!(
            done.collected,
            Collected::BroadcastAck {
                acks: vec![Value::from("me"), Value::from("x"), Value::from("y")],
                clients: 3
            }
        );
    }

    #[test]
    fn no_timeout_means_waiting_until_complete() {
        let mut r = Requests::default();
        let now = Instant::now();
        assert!(r
            .start(now, "f".into(), 2, Collected::Fetch(vec![]), Duration::MAX)
            .is_none());
        assert_eq!(r.poll_timeout(), None);
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
