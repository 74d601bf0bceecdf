//! One WebSocket's outgoing side: the frames waiting for its socket, written from where they
//! are produced.
//!
//! The driver queues each recipient's share of a broadcast (a reference to the one frame all
//! recipients share) and, once per batch of the core's output, writes each connection's queue
//! with one `send` (a `sendmsg` for several frames) while the socket takes it: no task hop, no
//! per-connection copy.
//! Only when the socket would block is the rest handed to the connection's task, which writes
//! it as the socket drains. Between writes nothing stays allocated.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

use super::shared::lock;

/// A whole WebSocket frame, shared by every connection it goes to. A thin pointer: a
/// connection that falls behind holds 8 bytes per frame it has yet to write.
pub(crate) type Frame = Arc<Vec<u8>>;

/// How many frames one `write` takes at most (Linux allows 1,024 slices).
const MAX_SLICES: usize = 128;

/// The socket under a WebSocket: a TCP connection, or (for a stream hyper hands over as
/// something else, TLS for instance) one end of a local pair whose other end a task copies.
pub(crate) enum Stream {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_read(buf),
        }
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.readable().await,
        }
    }

    /// One `send` of a single buffer, or a `sendmsg` of several (not `writev`: on a socket it
    /// first goes through the generic file layer, 7% of the server's samples at 50 events/s).
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_io(tokio::io::Interest::WRITABLE, || {
                let sock = socket2::SockRef::from(s);
                match bufs {
                    [one] => sock.send(one),
                    _ => sock.send_vectored(bufs),
                }
            }),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    /// Sends `frames` in order, the first from byte `offset` on, as far as one call takes them.
    fn send_frames<'a>(
        &self,
        offset: usize,
        mut frames: impl Iterator<Item = &'a Frame>,
    ) -> io::Result<usize> {
        let Some(first) = frames.next() else {
            return Ok(0);
        };
        let first = IoSlice::new(&first[offset..]);
        let Some(second) = frames.next() else {
            // The usual case at a low rate: no slices to build.
            return self.try_send(&[first]);
        };
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        slices[0] = first;
        slices[1] = IoSlice::new(second);
        let mut n = 2;
        for (slot, f) in slices[2..].iter_mut().zip(frames) {
            *slot = IoSlice::new(f);
            n += 1;
        }
        self.try_send(&slices[..n])
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.writable().await,
        }
    }
}

/// A connection's queue and socket, shared by the driver and the connection's task.
pub(crate) struct Outbox {
    stream: Stream,
    /// Frames that may wait ([`Options::ws_queue`](super::Options)); the high- and low-water
    /// marks are three quarters and a quarter of it.
    limit: usize,
    pending: Mutex<Pending>,
    /// Wakes the connection's task: the writing was handed to it, or the core closed.
    wake: Notify,
}

/// A connection's frames, in order. The first waits in place: at a low rate a connection has
/// one frame at a time, and queueing it then allocates nothing.
#[derive(Default)]
struct Frames {
    /// `None` only when the queue is empty.
    head: Option<Frame>,
    rest: VecDeque<Frame>,
}

impl Frames {
    fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn front(&self) -> Option<&Frame> {
        self.head.as_ref()
    }

    fn push_back(&mut self, f: Frame) {
        match self.head {
            None => self.head = Some(f),
            Some(_) => self.rest.push_back(f),
        }
    }

    fn pop_front(&mut self) {
        self.head = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            // A connection that caught up keeps no buffer.
            self.rest = VecDeque::new();
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Frame> {
        self.head.iter().chain(&self.rest)
    }

    fn clear(&mut self) {
        *self = Frames::default();
    }
}

#[derive(Default)]
struct Pending {
    frames: Frames,
    /// How much of the first frame is written.
    written: usize,
    /// The socket would block: the connection's task writes until the queue is empty.
    handed_over: bool,
    /// In the driver's list of queues to write at the end of its batch.
    dirty: bool,
    /// Past the high-water mark: the core skips volatile packets to this connection.
    blocked: bool,
    /// The core closed the connection: a close frame is the last thing queued.
    closing: bool,
    /// A write failed: nothing more is queued or written.
    failed: bool,
}

impl Pending {
    /// `wrote` more bytes went out: the frames wholly written leave the queue, and the next one
    /// may be part written.
    fn advance(&mut self, mut wrote: usize) {
        while let Some(f) = self.frames.front() {
            let left = f.len() - self.written;
            if wrote < left {
                self.written += wrote;
                break;
            }
            wrote -= left;
            self.written = 0;
            self.frames.pop_front();
        }
    }

    /// Takes in what one send did; whether to send again (`false`: the socket would block, or
    /// failed).
    fn sent(&mut self, r: io::Result<usize>) -> bool {
        match r {
            Ok(0) => self.fail(),
            Ok(wrote) => {
                self.advance(wrote);
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(_) => self.fail(),
        }
        false
    }

    /// The socket failed: nothing more is written, and nothing waits.
    fn fail(&mut self) {
        self.failed = true;
        self.frames.clear();
        self.written = 0;
    }
}

/// What [`Outbox::queue`] did.
pub(crate) enum Queued {
    /// Queued. `dirty`: the first frames since the last write (the driver writes them at the
    /// end of its batch); `blocked`: the queue just passed its high-water mark.
    Yes { dirty: bool, blocked: bool },
    /// The queue is full: the connection is a slow consumer. Nothing was queued.
    Full,
    /// The connection is closing or broken: dropped.
    Gone,
    /// Volatile, and the socket cannot take them now: dropped.
    Skipped,
}

/// How a write went.
pub(crate) struct Wrote {
    /// The queue fell below its low-water mark after being blocked.
    pub(crate) unblocked: bool,
    /// The socket failed: the connection is over.
    pub(crate) failed: bool,
}

impl Outbox {
    pub(crate) fn new(stream: Stream, limit: usize) -> Self {
        Outbox {
            stream,
            limit,
            pending: Mutex::default(),
            wake: Notify::new(),
        }
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Past this many frames waiting, the connection counts as blocked.
    fn high(&self) -> usize {
        self.limit - self.limit / 4
    }

    /// Under this many, a blocked connection is unblocked.
    fn low(&self) -> usize {
        self.limit / 4
    }

    /// Queues `frames` (each a whole WebSocket frame), all or none, if no more than the limit
    /// would then be waiting. `volatile` frames are dropped instead when the socket cannot take
    /// them now (as Node drops them when its transport is not writable).
    pub(crate) fn queue(&self, frames: &[Frame], volatile: bool) -> Queued {
        self.push(frames, volatile, self.high())
    }

    /// Writes `frames` now, from the caller's buffers, when nothing waits before them: the
    /// delivery of a broadcast with no other output behind it (every delivery at a low rate)
    /// is one `send`, with nothing queued and no second pass. What the socket does not take
    /// waits for the connection's task; when something already waits, this is
    /// [`queue`](Self::queue).
    pub(crate) fn send(&self, frames: &[Frame], volatile: bool) -> Queued {
        let mut p = lock(&self.pending);
        if p.closing || p.failed {
            return Queued::Gone;
        }
        if !p.frames.is_empty() || p.handed_over || frames.len() > self.limit {
            drop(p);
            return self.queue(frames, volatile);
        }
        let sent = self.stream.send_frames(0, frames.iter());
        match &sent {
            Ok(n) if *n == frames.iter().map(|f| f.len()).sum::<usize>() => {
                return Queued::Yes {
                    dirty: false,
                    blocked: false,
                }
            }
            Err(e) if volatile && e.kind() == io::ErrorKind::WouldBlock => return Queued::Skipped,
            _ => {}
        }
        for f in frames {
            p.frames.push_back(f.clone());
        }
        p.sent(sent);
        // What the socket did not take is the connection's task's to write; failed, it ends.
        let queued = if p.failed {
            Queued::Gone
        } else {
            let blocked = p.frames.len() > self.high();
            p.blocked |= blocked;
            Queued::Yes {
                dirty: false,
                blocked,
            }
        };
        self.hand_over(p);
        queued
    }

    /// Gives the writing to the connection's task and wakes it.
    fn hand_over(&self, mut p: MutexGuard<'_, Pending>) {
        p.handed_over = true;
        drop(p);
        self.wake.notify_one();
    }

    /// [`queue`](Self::queue), with `high` as the mark past which the connection is blocked.
    fn push(&self, frames: &[Frame], volatile: bool, high: usize) -> Queued {
        let mut p = lock(&self.pending);
        if p.closing || p.failed {
            return Queued::Gone;
        }
        if volatile && (p.handed_over || p.blocked) {
            return Queued::Skipped;
        }
        if p.frames.len() + frames.len() > self.limit {
            return Queued::Full;
        }
        for f in frames {
            p.frames.push_back(f.clone());
        }
        let dirty = !p.dirty && !p.handed_over;
        p.dirty |= dirty;
        let blocked = !p.blocked && p.frames.len() > high;
        p.blocked |= blocked;
        Queued::Yes { dirty, blocked }
    }

    /// Whether a write failed.
    pub(crate) fn failed(&self) -> bool {
        lock(&self.pending).failed
    }

    /// Whether the queue is past its high-water mark.
    pub(crate) fn is_blocked(&self) -> bool {
        lock(&self.pending).blocked
    }

    /// Writes what is queued while the socket takes it; hands the rest to the connection's
    /// task.
    pub(crate) fn write_now(&self) -> Wrote {
        let mut p = lock(&self.pending);
        p.dirty = false;
        if p.handed_over {
            return Wrote {
                unblocked: false,
                failed: p.failed,
            };
        }
        let r = self.write(&mut p);
        // Blocked, the rest goes to the connection's task; failed, that task ends.
        if !p.frames.is_empty() || p.failed {
            self.hand_over(p);
        }
        r
    }

    /// Queues the close frame, after everything else, and has the connection's task write it.
    pub(crate) fn close(&self, frame: Frame) {
        let mut p = lock(&self.pending);
        if p.closing || p.failed {
            return;
        }
        p.closing = true;
        p.frames.push_back(frame);
        self.hand_over(p);
    }

    /// Queues a pong and writes it now if the socket takes it. `false` if the queue is full or
    /// the connection broken.
    pub(crate) fn pong(&self, frame: Frame) -> bool {
        if !matches!(self.push(&[frame], false, usize::MAX), Queued::Yes { .. }) {
            return false;
        }
        !self.write_now().failed
    }

    /// The connection's task's side: waits until writing is handed over, then writes as the
    /// socket drains, telling `unblock` when the queue falls below its low-water mark. Returns
    /// once the
    /// socket failed, or the close frame is written.
    pub(crate) async fn write_loop<F, Fut>(&self, mut unblock: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            self.wake.notified().await;
            loop {
                let (wrote, done, closing) = {
                    let mut p = lock(&self.pending);
                    if p.failed {
                        return;
                    }
                    if !p.handed_over {
                        break;
                    }
                    let wrote = self.write(&mut p);
                    let done = p.frames.is_empty();
                    if done {
                        p.handed_over = false;
                    }
                    (wrote, done, p.closing)
                };
                if wrote.failed {
                    return;
                }
                if wrote.unblocked {
                    unblock().await;
                }
                if done {
                    if closing {
                        return;
                    }
                    break;
                }
                if self.stream.writable().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Writes until the queue is empty or the socket would block.
    fn write(&self, p: &mut Pending) -> Wrote {
        while !p.frames.is_empty() && !p.failed {
            let sent = self.stream.send_frames(p.written, p.frames.iter());
            if !p.sent(sent) {
                break;
            }
        }
        let failed = p.failed;
        let unblocked = p.blocked && p.frames.len() < self.low();
        if unblocked {
            p.blocked = false;
        }
        Wrote { unblocked, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b: u8) -> Frame {
        Arc::new(vec![b])
    }

    /// Whether `send` wrote everything at once and left nothing waiting.
    fn all_sent(q: &Queued) -> bool {
        matches!(
            q,
            Queued::Yes {
                dirty: false,
                blocked: false
            }
        )
    }

    /// An outbox on one end of a loopback TCP connection, and the other end.
    async fn pair(limit: usize) -> (Arc<Outbox>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let stream = Stream::Tcp(accepted.unwrap().0);
        (Arc::new(Outbox::new(stream, limit)), peer.unwrap())
    }

    #[tokio::test]
    async fn send_writes_at_once_and_leaves_what_the_socket_refuses_to_the_task() {
        use tokio::io::AsyncReadExt;
        let (outbox, mut peer) = pair(16).await;
        let small = Arc::new(b"hello".to_vec());
        // More frames than may ever wait: a slow consumer, nothing sent.
        assert!(matches!(
            outbox.send(&vec![small.clone(); 17], false),
            Queued::Full
        ));
        // An idle connection: written at once, nothing left waiting.
        assert!(all_sent(&outbox.send(std::slice::from_ref(&small), false)));
        assert!(lock(&outbox.pending).frames.is_empty());
        let mut got = [0; 5];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        // More than the socket takes: the rest waits for the connection's task.
        let big = Arc::new(vec![7u8; 32 << 20]);
        assert!(matches!(
            outbox.send(std::slice::from_ref(&big), false),
            Queued::Yes { dirty: false, .. }
        ));
        {
            let p = lock(&outbox.pending);
            assert!(p.handed_over && p.frames.len() == 1 && p.written > 0);
        }
        // Behind it a volatile frame is dropped, and another waits its turn.
        assert!(matches!(
            outbox.send(std::slice::from_ref(&small), true),
            Queued::Skipped
        ));
        assert!(matches!(
            outbox.send(std::slice::from_ref(&small), false),
            Queued::Yes { dirty: false, .. }
        ));
        let task = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.write_loop(|| async {}).await }
        });
        let mut all = vec![0; big.len() + 5];
        peer.read_exact(&mut all).await.unwrap();
        assert!(all[..big.len()].iter().all(|&b| b == 7));
        assert_eq!(&all[big.len()..], b"hello");
        // Once the task has caught up, the next frame goes out at once again.
        for _ in 0..1000 {
            if !lock(&outbox.pending).handed_over {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(all_sent(&outbox.send(std::slice::from_ref(&small), false)));
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        task.abort();
    }

    #[tokio::test]
    async fn send_to_a_closed_peer_ends_the_connection() {
        let (outbox, peer) = pair(16).await;
        drop(peer);
        let f = Arc::new(vec![1u8; 1024]);
        // The kernel may take the first send; the peer's reset fails a later one.
        let mut gone = false;
        for _ in 0..100 {
            if matches!(outbox.send(std::slice::from_ref(&f), false), Queued::Gone) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(gone && outbox.failed());
        assert!(matches!(outbox.send(&[f], false), Queued::Gone));
    }

    #[test]
    fn frames_keep_their_order_and_one_frame_allocates_nothing() {
        let mut q = Frames::default();
        assert!(q.is_empty() && q.front().is_none());
        q.push_back(frame(1));
        assert_eq!((q.len(), q.rest.capacity()), (1, 0));
        for b in 2..=4 {
            q.push_back(frame(b));
        }
        let order: Vec<u8> = q.iter().map(|f| f[0]).collect();
        assert_eq!(order, [1, 2, 3, 4]);
        let mut popped = Vec::new();
        while let Some(f) = q.front() {
            popped.push(f[0]);
            q.pop_front();
            // Once only the head is left, the rest gives its buffer back.
            if q.len() <= 1 {
                assert_eq!(q.rest.capacity(), 0);
            }
        }
        assert_eq!(popped, [1, 2, 3, 4]);
        assert!(q.is_empty());
        q.push_back(frame(5));
        q.push_back(frame(6));
        q.clear();
        assert!(q.is_empty() && q.rest.capacity() == 0);
    }
}
