//! Namespaces, sockets and rooms, and the broadcast selection over them.
//!
//! Sockets live in one dense slab; rooms are interned per namespace and hold their members in a
//! `Vec` with O(1) removal (swap-remove, each membership remembering its position). Selecting
//! the recipients of a broadcast is a walk over member lists; a union of rooms and the excluded
//! sockets are deduplicated with epoch stamps: one load, compare and store per member, no set,
//! no allocation.

use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::id::{IdIndex, Sid};
use crate::slots::Slots;

/// The slot of a namespace id: what socket entries hold (a socket's namespace is always live).
fn key_slot(id: NamespaceId) -> u32 {
    id.key().slot
}
use crate::Str;
use ahash::AHashMap;
use smallvec::SmallVec;

/// The socket's connection sends through the core's long-polling buffer.
pub(crate) const POLLING: u8 = 1;
/// The socket's connection cannot take a packet right now (volatile packets skip it).
pub(crate) const BLOCKED: u8 = 2;

/// A [`Slot`]'s flags live in the top two bits of its stamp word, the epoch in the rest.
const FLAG_SHIFT: u32 = 30;
const EPOCH_MASK: u32 = (1 << FLAG_SHIFT) - 1;

/// Where a socket's packets go: its connection's slot, and the transport flags that say how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) flags: u8,
    pub(crate) conn: u32,
}

/// The per-socket data a broadcast walk touches: 8 bytes, kept apart from the cold socket
/// records, so that a walk touches one small record per member and the whole array of a
/// 100,000-socket server (800 KB) stays in a core's L2 cache. It holds the dedup epoch with
/// the transport flags in its top bits, and the connection.
#[derive(Clone, Copy, Debug)]
struct Slot {
    stamp: u32,
    /// The connection's slot: generations are the session layer's business, and a walk
    /// writes 4 bytes a recipient.
    conn: u32,
}

impl Slot {
    fn flags(self) -> u8 {
        (self.stamp >> FLAG_SHIFT) as u8
    }

    fn epoch(self) -> u32 {
        self.stamp & EPOCH_MASK
    }

    fn set_epoch(&mut self, epoch: u32) {
        self.stamp = (self.stamp & !EPOCH_MASK) | epoch;
    }

    fn set_flags(&mut self, flags: u8) {
        self.stamp = (self.stamp & EPOCH_MASK) | (u32::from(flags) << FLAG_SHIFT);
    }
}

/// A socket's place in one room: the room, and the socket's index in the room's member list.
#[derive(Clone, Copy, Debug)]
struct Membership {
    room: u32,
    pos: u32,
}

#[derive(Debug)]
struct SocketEntry {
    nsp: u32,
    sid: Sid,
    /// Index in the namespace's `all` list.
    pos: u32,
    /// Inline up to ten rooms: most sockets are in a few, and no heap block is then needed.
    rooms: SmallVec<[Membership; 10]>,
}

#[derive(Debug)]
struct Room {
    name: Str,
    members: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Namespace {
    pub(crate) name: Str,
    all: Vec<u32>,
    rooms: Vec<Room>,
    free_rooms: Vec<u32>,
    room_by_name: AHashMap<Str, u32>,
    /// Ack ids are drawn per namespace, as the reference does, so one id can serve every
    /// recipient of a broadcast.
    pub(crate) next_ack_id: u64,
    /// Created by a client's CONNECT through the dynamic-namespace rule (a parent's child), not
    /// by the application: the kind the core may remove once empty.
    pub(crate) child: bool,
    /// CONNECTs to it still being decided: while any is, it is not removed.
    pub(crate) pending: u32,
    /// Whether it ever had a socket.
    pub(crate) populated: bool,
    /// Removed, its name free again: its id lives on, naming an empty namespace, until the
    /// application has read the removal (see [`Router::retire`]).
    pub(crate) retired: bool,
}

impl Namespace {
    /// Whether it has no socket.
    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// What [`Router::join`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The socket was already a member.
    Already,
    /// The socket joined; `created` when the room did not exist before.
    Joined { created: bool },
}

/// What [`Router::leave`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// The socket was not a member.
    NotMember,
    /// The socket left; `deleted` when it was the last member.
    Left { deleted: bool },
}

/// Which sockets of a namespace a broadcast reaches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selection<'a> {
    pub(crate) nsp: NamespaceId,
    /// Union of these rooms; every socket of the namespace when empty.
    pub(crate) rooms: &'a [Str],
    /// Minus the members of these rooms.
    pub(crate) except: &'a [Str],
    /// Minus this socket (the sender of `socket.broadcast`).
    pub(crate) exclude: Option<SocketHandle>,
    /// Skip connections that cannot take a packet now.
    pub(crate) volatile: bool,
}

/// Out of the hot loops: a member on a flagged transport is rare.
#[cold]
#[inline(never)]
fn push_cold(v: &mut Vec<u32>, m: u32) {
    v.push(m);
}

/// A list of members to walk for a selection.
#[derive(Clone, Copy)]
enum Source {
    /// Every socket of the namespace.
    All,
    /// A room's members.
    Room(u32),
    /// One socket (named by its id).
    One(u32),
}

/// A selection resolved to member lists.
struct Plan {
    sources: SmallVec<[Source; 8]>,
    except: SmallVec<[Source; 8]>,
    /// Whether members must be deduplicated with stamps.
    stamped: bool,
    /// The excluded sender's slot, or `u32::MAX`.
    exclude: u32,
}

/// A room name resolved in one namespace: a real room, and/or the socket whose id it is.
#[derive(Clone, Copy)]
struct Resolved {
    room: Option<u32>,
    own: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Router {
    nsps: Slots<Namespace>,
    nsp_by_name: AHashMap<Str, u32>,
    sockets: Slots<SocketEntry>,
    hot: Vec<Slot>,
    by_sid: IdIndex,
    epoch: u32,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            nsps: Slots::with_max(u32::MAX),
            nsp_by_name: AHashMap::default(),
            sockets: Slots::with_max(u32::MAX),
            hot: Vec::new(),
            by_sid: IdIndex::default(),
            epoch: 0,
        }
    }
}

impl Router {
    /// Adds a namespace, or returns the one of that name. A `child` is one a client's CONNECT
    /// created; a namespace the application adds is never a child, even if one existed first.
    pub(crate) fn add_namespace(&mut self, name: Str, child: bool) -> NamespaceId {
        if let Some(id) = self.namespace(&name) {
            if let Some(n) = self.nsps.get_mut(id.key()) {
                n.child &= child;
            }
            return id;
        }
        let key = self
            .nsps
            .insert(|_| Namespace {
                name: name.clone(),
                all: Vec::new(),
                rooms: Vec::new(),
                free_rooms: Vec::new(),
                room_by_name: AHashMap::default(),
                next_ack_id: 0,
                child,
                pending: 0,
                populated: false,
                retired: false,
            })
            .unwrap_or_else(|| unreachable!("four billion namespaces"));
        self.nsp_by_name.insert(name, key.slot);
        NamespaceId::from_key(key)
    }

    /// Takes a namespace that has no socket left out of use: its name is free again (a new
    /// namespace may take it), it can have no socket, and it holds no memory but its record.
    /// Its id still names it until [`remove_namespace`](Self::remove_namespace), so that the
    /// events about it queued before its removal can still be read. Returns false (and does
    /// nothing) if it still has sockets, is retired already, or the id is stale.
    pub(crate) fn retire(&mut self, id: NamespaceId) -> bool {
        let Some(n) = self.nsps.get_mut(id.key()) else {
            return false;
        };
        if !n.all.is_empty() || n.retired {
            return false;
        }
        debug_assert!(n.room_by_name.is_empty(), "rooms without sockets");
        n.retired = true;
        self.nsp_by_name.remove(&n.name);
        n.all = Vec::new();
        n.rooms = Vec::new();
        n.free_rooms = Vec::new();
        n.room_by_name = AHashMap::default();
        true
    }

    /// Frees a retired namespace's slot: its id is stale from now on.
    pub(crate) fn remove_namespace(&mut self, id: NamespaceId) {
        if self.nsp(id).is_some_and(|n| n.retired) {
            self.nsps.remove(id.key());
        }
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<NamespaceId> {
        let slot = *self.nsp_by_name.get(name)?;
        self.nsps.key_at(slot).map(NamespaceId::from_key)
    }

    /// A namespace, unless its id is stale (the namespace was removed).
    pub(crate) fn nsp(&self, id: NamespaceId) -> Option<&Namespace> {
        self.nsps.get(id.key())
    }

    /// The name of a namespace, unless its id is stale.
    pub(crate) fn nsp_name(&self, id: NamespaceId) -> Option<&Str> {
        self.nsp(id).map(|n| &n.name)
    }

    pub(crate) fn nsp_mut(&mut self, id: NamespaceId) -> Option<&mut Namespace> {
        self.nsps.get_mut(id.key())
    }

    pub(crate) fn namespaces(&self) -> impl Iterator<Item = (NamespaceId, &Str)> {
        self.nsps
            .iter()
            .map(|(k, n)| (NamespaceId::from_key(k), &n.name))
    }

    fn entry(&self, s: SocketHandle) -> Option<&SocketEntry> {
        self.sockets.get(s.key())
    }

    pub(crate) fn slot_live(&self, slot: usize) -> bool {
        self.sockets.at(slot as u32).is_some()
    }

    pub(crate) fn contains(&self, s: SocketHandle) -> bool {
        self.entry(s).is_some()
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Adds a socket with its own (already unique) id to a namespace.
    pub(crate) fn insert_socket(
        &mut self,
        nsp: NamespaceId,
        sid: Sid,
        conn: ConnectionHandle,
        flags: u8,
    ) -> Option<SocketHandle> {
        let n = self.nsps.get_mut(nsp.key()).filter(|n| !n.retired)?;
        n.populated = true;
        // Socket slots are 32-bit and sockets need a connection each, whose slots are fewer:
        // this table cannot fill up before the connections' does.
        let key = self
            .sockets
            .insert(|key| {
                n.all.push(key.slot);
                SocketEntry {
                    nsp: key_slot(nsp),
                    sid,
                    pos: n.all.len() as u32 - 1,
                    rooms: SmallVec::new(),
                }
            })
            .unwrap_or_else(|| unreachable!("more sockets than connection slots"));
        let mut h = Slot {
            stamp: 0,
            conn: conn.index() as u32,
        };
        h.set_flags(flags);
        match self.hot.get_mut(key.slot as usize) {
            Some(slot) => *slot = h,
            None => self.hot.push(h),
        }
        let sockets = &self.sockets;
        self.by_sid
            .insert(&sid, key.slot, |s| sockets[s as usize].sid);
        Some(SocketHandle::from_key(key))
    }

    /// Removes a socket after it left all its rooms (see [`Router::leave_all`]).
    pub(crate) fn remove_socket(&mut self, s: SocketHandle) -> bool {
        if self.entry(s).is_none() {
            return false;
        }
        let left = self.leave_all(s);
        debug_assert!(
            self.entry(s).is_some_and(|e| e.rooms.is_empty()),
            "{left:?}"
        );
        let e = &self.sockets[s.slot as usize];
        let (nsp, pos) = (e.nsp as usize, e.pos as usize);
        let sid = e.sid;
        let sockets = &self.sockets;
        self.by_sid.remove(&sid, |s| sockets[s as usize].sid);
        self.sockets.remove(s.key());
        let all = &mut self.nsps[nsp].all;
        all.swap_remove(pos);
        if let Some(&moved) = all.get(pos) {
            self.sockets[moved as usize].pos = pos as u32;
        }
        true
    }

    pub(crate) fn sid(&self, s: SocketHandle) -> Option<&str> {
        self.entry(s).map(|e| e.sid.as_str())
    }

    fn slot_by_sid(&self, sid: &str) -> Option<u32> {
        let sid = Sid::parse(sid)?;
        self.by_sid.get(&sid, |s| self.sockets[s as usize].sid)
    }

    pub(crate) fn namespace_of(&self, s: SocketHandle) -> Option<NamespaceId> {
        let e = self.entry(s)?;
        self.nsps.key_at(e.nsp).map(NamespaceId::from_key)
    }

    /// The slot of the socket's connection.
    pub(crate) fn conn_slot_of(&self, s: SocketHandle) -> Option<u32> {
        self.entry(s).map(|_| self.hot[s.slot as usize].conn)
    }

    pub(crate) fn by_sid(&self, sid: &str) -> Option<SocketHandle> {
        let slot = self.slot_by_sid(sid)?;
        self.sockets.key_at(slot).map(SocketHandle::from_key)
    }

    /// Sets or clears transport flags on a socket.
    pub(crate) fn set_flags(&mut self, s: SocketHandle, set: u8, clear: u8) {
        if self.entry(s).is_some() {
            let h = &mut self.hot[s.slot as usize];
            h.set_flags((h.flags() | set) & !clear);
        }
    }

    pub(crate) fn join(&mut self, s: SocketHandle, room: &str) -> Option<Joined> {
        let nsp = self.entry(s)?.nsp as usize;
        let n = &mut self.nsps[nsp];
        let (id, created) = match n.room_by_name.get(room) {
            Some(&id) => (id, false),
            None => {
                let name = Str::from(room);
                let r = Room {
                    name: name.clone(),
                    members: Vec::new(),
                };
                let id = match n.free_rooms.pop() {
                    Some(id) => {
                        n.rooms[id as usize] = r;
                        id
                    }
                    None => {
                        n.rooms.push(r);
                        n.rooms.len() as u32 - 1
                    }
                };
                n.room_by_name.insert(name, id);
                (id, true)
            }
        };
        if !created
            && self.sockets[s.slot as usize]
                .rooms
                .iter()
                .any(|m| m.room == id)
        {
            return Some(Joined::Already);
        }
        let members = &mut n.rooms[id as usize].members;
        members.push(s.slot);
        let pos = members.len() as u32 - 1;
        self.sockets[s.slot as usize]
            .rooms
            .push(Membership { room: id, pos });
        Some(Joined::Joined { created })
    }

    pub(crate) fn leave(&mut self, s: SocketHandle, room: &str) -> Option<Left> {
        let e = self.entry(s)?;
        let Some(&id) = self.nsps[e.nsp as usize].room_by_name.get(room) else {
            return Some(Left::NotMember);
        };
        let Some(i) = e.rooms.iter().position(|m| m.room == id) else {
            return Some(Left::NotMember);
        };
        Some(Left::Left {
            deleted: self.leave_at(s.slot, i),
        })
    }

    /// Removes membership `i` of socket `slot`; returns whether the room was deleted.
    fn leave_at(&mut self, slot: u32, i: usize) -> bool {
        let e = &mut self.sockets[slot as usize];
        let m = e.rooms.swap_remove(i);
        let n = &mut self.nsps[e.nsp as usize];
        let room = &mut n.rooms[m.room as usize];
        room.members.swap_remove(m.pos as usize);
        if let Some(&moved) = room.members.get(m.pos as usize) {
            // The member moved into the hole: point its membership at its new position.
            if let Some(mm) = self.sockets[moved as usize]
                .rooms
                .iter_mut()
                .find(|mm| mm.room == m.room)
            {
                mm.pos = m.pos;
            }
        }
        if room.members.is_empty() {
            let name = std::mem::take(&mut room.name);
            room.members = Vec::new();
            n.room_by_name.remove(&name);
            n.free_rooms.push(m.room);
            true
        } else {
            false
        }
    }

    /// Leaves every room; returns each room left with whether it was deleted.
    pub(crate) fn leave_all(&mut self, s: SocketHandle) -> Vec<(Str, bool)> {
        let Some(e) = self.entry(s) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(e.rooms.len());
        while let Some(m) = self.sockets[s.slot as usize].rooms.last().copied() {
            let nsp = self.sockets[s.slot as usize].nsp as usize;
            let name = self.nsps[nsp].rooms[m.room as usize].name.clone();
            let i = self.sockets[s.slot as usize].rooms.len() - 1;
            let deleted = self.leave_at(s.slot, i);
            out.push((name, deleted));
        }
        out
    }

    /// The rooms a socket is in: its own id first, then the rooms it joined.
    pub(crate) fn rooms_of(&self, s: SocketHandle) -> Vec<Str> {
        let Some(e) = self.entry(s) else {
            return Vec::new();
        };
        let n = &self.nsps[e.nsp as usize];
        std::iter::once(e.sid.to_str())
            .chain(
                e.rooms
                    .iter()
                    .map(|m| n.rooms[m.room as usize].name.clone()),
            )
            .collect()
    }

    /// Every room of a namespace, with its member count (own-id rooms not included).
    pub(crate) fn rooms(&self, nsp: NamespaceId) -> impl Iterator<Item = (&Str, usize)> {
        self.nsp(nsp).into_iter().flat_map(|n| {
            n.room_by_name
                .iter()
                .map(move |(name, &id)| (name, n.rooms[id as usize].members.len()))
        })
    }

    /// The handle of the live socket in `slot` (a slot from a walk or a member list).
    pub(crate) fn handle(&self, slot: u32) -> SocketHandle {
        let key = self.sockets.key_at(slot);
        debug_assert!(key.is_some(), "handle of a free slot {slot}");
        key.map_or(SocketHandle { slot, gen: 0 }, SocketHandle::from_key)
    }

    /// Resolves a room name in a live namespace `n` (in slot `slot`).
    fn resolve(&self, n: &Namespace, slot: u32, name: &str) -> Resolved {
        Resolved {
            room: n.room_by_name.get(name).copied(),
            own: self
                .slot_by_sid(name)
                .filter(|&s| self.sockets[s as usize].nsp == slot),
        }
    }

    /// The members of a room (a socket's own id counts as a room of one).
    pub(crate) fn members(&self, nsp: NamespaceId, room: &str) -> Vec<SocketHandle> {
        let Some(n) = self.nsp(nsp) else {
            return Vec::new();
        };
        let r = self.resolve(n, key_slot(nsp), room);
        let mut out: Vec<SocketHandle> = r
            .room
            .map(|id| {
                n.rooms[id as usize]
                    .members
                    .iter()
                    .map(|&s| self.handle(s))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(own) = r.own {
            if !out.iter().any(|h| h.slot == own) {
                out.push(self.handle(own));
            }
        }
        out
    }

    /// Resolves a selection's room names into member lists to walk.
    /// A stale namespace selects nobody.
    fn plan(&self, sel: &Selection<'_>) -> Plan {
        let Some(n) = self.nsp(sel.nsp) else {
            return Plan {
                sources: SmallVec::new(),
                except: SmallVec::new(),
                stamped: false,
                exclude: u32::MAX,
            };
        };
        let resolve_all = |names: &[Str]| -> SmallVec<[Source; 8]> {
            let mut out = SmallVec::new();
            for name in names {
                let r = self.resolve(n, key_slot(sel.nsp), name);
                out.extend(r.room.map(Source::Room));
                out.extend(r.own.map(Source::One));
            }
            out
        };
        let mut sources = resolve_all(sel.rooms);
        if sel.rooms.is_empty() {
            sources.push(Source::All);
        }
        let except = resolve_all(sel.except);
        // One source and nothing to subtract but the sender: members are distinct, no stamps.
        let stamped = sources.len() > 1 || !except.is_empty();
        Plan {
            sources,
            except,
            stamped,
            exclude: sel
                .exclude
                .filter(|s| self.contains(*s))
                .map_or(u32::MAX, |s| s.slot),
        }
    }

    fn members_of<'a>(n: &'a Namespace, src: &'a Source) -> &'a [u32] {
        match src {
            Source::All => &n.all,
            Source::Room(id) => &n.rooms[*id as usize].members,
            Source::One(slot) => std::slice::from_ref(slot),
        }
    }

    /// Starts a new dedup epoch and stamps everything the plan excludes: the sender and the
    /// members of the `except` rooms.
    fn stamp_excluded(&mut self, nsp: NamespaceId, plan: &Plan) -> u32 {
        self.epoch = (self.epoch + 1) & EPOCH_MASK;
        if self.epoch == 0 {
            self.hot.iter_mut().for_each(|h| h.set_epoch(0));
            self.epoch = 1;
        }
        let epoch = self.epoch;
        if let Some(h) = self.hot.get_mut(plan.exclude as usize) {
            h.set_epoch(epoch);
        }
        let n = &self.nsps[key_slot(nsp) as usize];
        for src in &plan.except {
            for &m in Self::members_of(n, src) {
                self.hot[m as usize].set_epoch(epoch);
            }
        }
        epoch
    }

    /// Resolves a selection and, when it needs dedup, starts its epoch.
    fn begin(&mut self, sel: &Selection<'_>) -> (Plan, u32) {
        let plan = self.plan(sel);
        let epoch = if plan.stamped {
            self.stamp_excluded(sel.nsp, &plan)
        } else {
            0
        };
        (plan, epoch)
    }

    /// Walks the recipients of a selection, calling `each` with each recipient's slot, once
    /// per socket. Returns the number of recipients. For emits, [`select_conns`](Self::select_conns)
    /// is the faster form.
    pub(crate) fn select(&mut self, sel: &Selection<'_>, mut each: impl FnMut(u32, Hot)) -> usize {
        let skip = if sel.volatile { BLOCKED } else { 0 };
        let (plan, epoch) = self.begin(sel);
        // A stale namespace's plan is empty: its vacant slot is never walked.
        let n = &self.nsps[key_slot(sel.nsp) as usize];
        let hot = &mut self.hot[..];
        let mut count = 0;
        for src in &plan.sources {
            for &m in Self::members_of(n, src) {
                let h = &mut hot[m as usize];
                if plan.stamped {
                    if h.epoch() == epoch {
                        continue;
                    }
                    h.set_epoch(epoch);
                } else if m == plan.exclude {
                    continue;
                }
                if h.flags() & skip == 0 {
                    each(
                        m,
                        Hot {
                            flags: h.flags(),
                            conn: h.conn,
                        },
                    );
                    count += 1;
                }
            }
        }
        count
    }

    /// The broadcast walk: appends the connection of every recipient whose transport flags are
    /// clear to `plain` (the WebSocket batch), and the slot of every other recipient to `flagged`
    /// for the caller to route (long-polling queue, or skipped when volatile and blocked).
    ///
    /// The loop is branch-free on the common path: each member's connection is written at the
    /// next free place of a pre-sized buffer, which only advances when the member counts.
    pub(crate) fn select_conns(
        &mut self,
        sel: &Selection<'_>,
        plain: &mut Vec<u32>,
        flagged: &mut Vec<u32>,
    ) {
        let (plan, epoch) = self.begin(sel);
        // A stale namespace's plan is empty: its vacant slot is never walked.
        let n = &self.nsps[key_slot(sel.nsp) as usize];
        // A slice, not a `&Vec`: its pointer then stays in a register through the loops.
        let hot = &mut self.hot[..];
        if !plan.stamped {
            // One source of distinct members: copy every connection in one tight pass, noting
            // the rare members that need a second look (the sender, flagged transports), then
            // take those out.
            let members = plan
                .sources
                .first()
                .map_or(&[][..], |src| Self::members_of(n, src));
            let start = plain.len();
            let mut rare: SmallVec<[u32; 4]> = SmallVec::new();
            // Captured by value (`move`): read through a reference, the sender's slot would be
            // reloaded for every member, the pushes to `rare` possibly aliasing it.
            let exclude = plan.exclude;
            let walk: &[Slot] = hot;
            let rare_out = &mut rare;
            plain.extend(members.iter().enumerate().map(move |(i, &m)| {
                let h = &walk[m as usize];
                // Flags are the stamp's top bits: any set means the word is at least 1 << 30.
                if (m == exclude) | (h.stamp > EPOCH_MASK) {
                    rare_out.push(i as u32);
                }
                h.conn
            }));
            for &i in rare.iter().rev() {
                let m = members[i as usize];
                if m != exclude {
                    flagged.push(m);
                }
                plain.swap_remove(start + i as usize);
            }
            return;
        }
        for src in &plan.sources {
            let members = Self::members_of(n, src);
            let start = plain.len();
            plain.resize(start + members.len(), 0);
            let buf = &mut plain[start..];
            let mut k = 0;
            for &m in members {
                // Branch-free: whether a member was already reached is random, so a branch on
                // it would mispredict about as often as a union has duplicates.
                let h = &mut hot[m as usize];
                // A plain socket's word is its bare epoch: one compare says "fresh and plain".
                let word = h.stamp;
                let fresh = word & EPOCH_MASK != epoch;
                let plain = word <= EPOCH_MASK;
                h.stamp = (word & !EPOCH_MASK) | epoch;
                buf[k] = h.conn;
                k += usize::from(fresh & plain);
                if fresh & !plain {
                    push_cold(flagged, m);
                }
            }
            plain.truncate(start + k);
        }
    }

    /// The routing flags and connection of a socket slot.
    pub(crate) fn hot(&self, slot: u32) -> Hot {
        let h = self.hot[slot as usize];
        Hot {
            flags: h.flags(),
            conn: h.conn,
        }
    }

    /// Checks every index both ways; for tests and fuzzing.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (key, e) in self.sockets.iter() {
            let slot = key.slot;
            let n = &self.nsps[e.nsp as usize];
            if n.all.get(e.pos as usize) != Some(&slot) {
                return Err(format!("socket {slot} not at its namespace position"));
            }
            if self.by_sid.get(&e.sid, |s| self.sockets[s as usize].sid) != Some(slot) {
                return Err(format!("socket {slot} id not indexed"));
            }
            for m in &e.rooms {
                let room = n
                    .rooms
                    .get(m.room as usize)
                    .ok_or("membership of a missing room")?;
                if room.members.get(m.pos as usize) != Some(&slot) {
                    return Err(format!(
                        "socket {slot} not at its position in room {:?}",
                        room.name
                    ));
                }
            }
        }
        for (key, n) in self.nsps.iter() {
            let ni = key.slot as usize;
            for (name, &id) in &n.room_by_name {
                let room = &n.rooms[id as usize];
                if room.members.is_empty() {
                    return Err(format!("empty room {name:?} kept"));
                }
                if &room.name != name {
                    return Err(format!("room {name:?} indexed under another name"));
                }
                for (pos, &m) in room.members.iter().enumerate() {
                    let Some(e) = self.sockets.at(m) else {
                        return Err(format!("room {name:?} holds a dead socket"));
                    };
                    if e.nsp as usize != ni {
                        return Err(format!("room {name:?} holds a dead or foreign socket"));
                    }
                    if !e
                        .rooms
                        .iter()
                        .any(|mm| mm.room == id && mm.pos as usize == pos)
                    {
                        return Err(format!("room {name:?} member {m} does not know it"));
                    }
                }
            }
            let live_rooms = n.rooms.len() - n.free_rooms.len();
            if live_rooms != n.room_by_name.len() {
                return Err("room slab and index disagree".into());
            }
            for &m in &n.all {
                if !self.slot_live(m as usize) {
                    return Err("namespace lists a dead socket".into());
                }
            }
        }
        if self.by_sid.len() != self.socket_count() {
            return Err("id index and slab disagree".into());
        }
        for (name, &slot) in &self.nsp_by_name {
            let n = self
                .nsps
                .at(slot)
                .ok_or("a name indexes a free namespace slot")?;
            if n.retired || &n.name != name {
                return Err(format!("namespace name {name:?} indexes another namespace"));
            }
        }
        for (key, n) in self.nsps.iter() {
            let named = self.nsp_by_name.get(&n.name) == Some(&key.slot);
            if n.retired && (!n.all.is_empty() || named) {
                return Err(format!("retired namespace {:?} still in use", n.name));
            }
        }
        Ok(())
    }
}
