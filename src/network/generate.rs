//! The graph generators of MODEL.md v2 ("Social-network word of mouth"):
//! Erdős–Rényi, Watts–Strogatz and Barabási–Albert, each drawing from the
//! `Event::Network` streams of one key, so a graph is a pure function of it.
//!
//! They are sequential on purpose: a fixed graph is built under the cache's
//! lock (see `graph_for`), where rayon could run another replication's work on
//! this thread and deadlock on that lock.
//!
//! Each builds its CSR in place, in the buffer that becomes the graph's
//! neighbours, without an intermediate edge list or per-user rows: beyond the
//! graph's own `4·(N+1) + 8·E` bytes, Erdős–Rényi and Barabási–Albert hold one
//! `u32` per user, Watts–Strogatz two plus a slack of
//! `WATTS_STROGATZ_SLACK` (2) `u32` per user (see `GappedRows`).

use rand::Rng;

use super::{Graph, GraphError, MAX_HALF_EDGES};
use crate::rng::{DrawRng, Event, ReplicationKey};

/// A uniform integer in `0..n` (`n >= 1`) from 64 random bits (Lemire's
/// multiply-shift; the bias is below `n / 2^64`).
#[inline]
pub(super) fn below(generator: &mut DrawRng, n: u64) -> u64 {
    ((u128::from(generator.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Up to this `m`, [`barabasi_albert`] finds a repeated draw among the user's
/// draws so far (at most `m − 1` comparisons, in cache) rather than in a mark
/// per user (a cache miss per draw in a large graph).
const LOCAL_REPEAT_CHECK: usize = 16;

/// Division of any `u32` by a fixed divisor with a multiplication: `n / d =
/// ⌊c·n / 2^64⌋` with `c = ⌈2^64 / d⌉`, exact for every 32-bit `n` (Lemire,
/// Kaser & Kurz 2019, "Faster remainder by direct computation"), where a
/// division instruction costs several times as much.
#[derive(Debug, Clone, Copy)]
struct DivideBy {
    /// `⌈2^64 / d⌉`, or 0 for `d = 1` (2^64 does not fit).
    multiplier: u64,
}

impl DivideBy {
    /// For `d >= 1`.
    fn new(d: u32) -> Self {
        assert!(d >= 1, "a divisor of at least 1");
        DivideBy {
            multiplier: if d == 1 {
                0
            } else {
                u64::MAX / u64::from(d) + 1
            },
        }
    }

    /// `n / d`.
    #[inline(always)]
    fn quotient(self, n: u32) -> u32 {
        if self.multiplier == 0 {
            n
        } else {
            ((u128::from(self.multiplier) * u128::from(n)) >> 64) as u32
        }
    }
}

/// Sorts `row` ascending: a short one (up to [`LOCAL_REPEAT_CHECK`]) by
/// odd–even transposition, `len` rounds of compare-exchanges without
/// branches (a Barabási–Albert row of random targets mispredicts most of an
/// insertion sort's branches), a longer one by `sort_unstable`.
fn sort_short(row: &mut [u32]) {
    if row.len() > LOCAL_REPEAT_CHECK {
        row.sort_unstable();
        return;
    }
    for round in 0..row.len() {
        for i in (round % 2..row.len().saturating_sub(1)).step_by(2) {
            let (a, b) = (row[i], row[i + 1]);
            row[i] = a.min(b);
            row[i + 1] = a.max(b);
        }
    }
}

/// `2·edges` as a `usize` length of the neighbours.
///
/// # Panics
/// If `2·edges` exceeds [`MAX_HALF_EDGES`] (the `u32` offsets), with
/// [`GraphError::TooManyEdges`]'s message; the scenario's validation keeps every
/// graph it allows far below that.
fn half_edges(edges: u64) -> usize {
    if edges.saturating_mul(2) > MAX_HALF_EDGES {
        panic!("{}", GraphError::TooManyEdges { edges });
    }
    (2 * edges) as usize
}

/// A hint to the CPU to bring `item`'s cache line closer (no effect on the
/// results; nothing on targets other than x86-64).
#[inline(always)]
pub(super) fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and reads nothing
    // into the program, and `item` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Erdős–Rényi `G(N, p)` with `p = mean_degree / (N - 1)`: every pair of users is
/// an edge independently with probability `p` (MODEL.md v2).
///
/// Drawn by geometric skipping (Batagelj & Brandes 2005, "Efficient generation
/// of large random networks", algorithm G(n,p)) row by row: user `u`'s
/// neighbours `v > u` are found by skipping `⌊ln U / ln(1 − p)⌋` non-edges at a
/// time with `U` from `u`'s stream (round 0), so the work is `O(N + E)`.
///
/// Built in place: the rows' out-neighbours `v > u` are pushed one after the
/// other into the future neighbours buffer (reserved for `2·(E[E] + 6 sd)`,
/// whose untouched part is never resident) with a `u32` count per user, then
/// moved to the ends of their rows in descending user order, and every user
/// `u` is appended to its out-neighbours' rows in ascending order: a row is its
/// in-neighbours `< u` then its out-neighbours `> u`, both ascending.
///
/// `mean_degree` in `[0, N - 1]` (checked upstream; larger is taken as `p = 1`).
///
/// # Panics
/// If the drawn graph has `2E > 2^32 − 1` (validation keeps the expectation ten
/// standard deviations below).
pub fn erdos_renyi(users: u32, mean_degree: f64, key: ReplicationKey) -> Graph {
    let n = users as usize;
    if users < 2 || mean_degree <= 0.0 {
        return Graph::from_csr(vec![0; n + 1], Vec::new());
    }
    let p = mean_degree / f64::from(users - 1);
    if p >= 1.0 {
        return complete(users);
    }
    let stream = key.stream(0, Event::Network);
    let n64 = u64::from(users);
    // ln(1 − p) without cancellation for small p.
    let log_q = (-p).ln_1p();
    let expected = p * (n64 as f64) * ((n64 - 1) as f64) / 2.0;
    let mut neighbours: Vec<u32> =
        Vec::with_capacity(2 * (expected + 6.0 * expected.sqrt()) as usize);
    let mut out_degree = vec![0u32; n];
    for u in 0..users {
        let mut generator = stream.generator(u);
        let mut v = u64::from(u);
        loop {
            let skip = (generator.open_uniform().ln() / log_q).floor();
            if skip >= (n64 - v) as f64 {
                break;
            }
            v += 1 + skip as u64;
            if v >= n64 {
                break;
            }
            neighbours.push(v as u32);
            out_degree[u as usize] += 1;
        }
    }
    let edges = neighbours.len();
    let total = half_edges(edges as u64);
    // offsets[v + 1] counts v's in-neighbours, then the prefix sums of degrees.
    let mut offsets = vec![0u32; n + 1];
    for &v in &neighbours {
        offsets[v as usize + 1] += 1;
    }
    for u in 0..n {
        offsets[u + 1] += offsets[u] + out_degree[u];
    }
    neighbours.resize(total, 0);
    // Row u's out-neighbours sit at source..source_end; their place is the end
    // of u's row, at or after source (offsets[u] counts at least every
    // out-neighbour of the users before u), so descending u never overwrites an
    // unmoved row.
    let mut source_end = edges;
    for u in (0..n).rev() {
        let source = source_end - out_degree[u] as usize;
        let destination = offsets[u + 1] as usize - out_degree[u] as usize;
        neighbours.copy_within(source..source_end, destination);
        source_end = source;
    }
    // cursor[v]: where v's next in-neighbour goes. When u's turn comes, every
    // in-neighbour of u is written, so cursor[u] is where its out-part begins.
    let mut cursor = out_degree;
    cursor.copy_from_slice(&offsets[..n]);
    for u in 0..n {
        for i in cursor[u] as usize..offsets[u + 1] as usize {
            let v = neighbours[i] as usize;
            neighbours[cursor[v] as usize] = u as u32;
            cursor[v] += 1;
        }
    }
    if neighbours.capacity() > neighbours.len() {
        neighbours.shrink_to_fit();
    }
    Graph::from_csr(offsets, neighbours)
}

/// The complete graph on `users` users (Erdős–Rényi with `p = 1`).
fn complete(users: u32) -> Graph {
    let n = u64::from(users);
    let total = half_edges(n * n.saturating_sub(1) / 2);
    let offsets = (0..=n).map(|u| (u * (n - 1)) as u32).collect();
    let mut neighbours = Vec::with_capacity(total);
    for u in 0..users {
        neighbours.extend((0..users).filter(|&v| v != u));
    }
    Graph::from_csr(offsets, neighbours)
}

/// `u32` of slack per user in the Watts–Strogatz buffer. Measured at 10^6
/// users and mean degree 50 (BENCHMARKS.md): slack 1, 2, 4 take 0.85, 0.78,
/// 0.78 s of CPU at rewiring 0.1 and 5.3, 4.0, 3.6 s at rewiring 1, for 8, 12,
/// 20 bytes per user beyond the graph.
const WATTS_STROGATZ_SLACK: u64 = 2;

/// How many users ahead [`watts_strogatz`] fetches a rewiring's row.
const REWIRING_AHEAD: u32 = 16;

/// Watts–Strogatz: the ring lattice joining each user `u` to `u ± 1, …, u ± k/2`
/// (mod N), then for `j = 1..k/2` and within it `u = 0..N−1` the edge
/// `(u, u + j mod N)` is rewired with probability `rewiring`: `u` keeps it and
/// `u + j` is replaced by `w` drawn uniformly among the users `w ≠ u` not
/// adjacent to `u` at that moment, the edge kept as is if there is none
/// (MODEL.md v2; Watts & Strogatz 1998).
///
/// The draws of `(j, u)` come from `u`'s stream of round `j`: first the
/// Bernoulli, then `w` by rejection (or, when fewer than a quarter of the users
/// are candidates, by its rank among them). `k` even, `2 <= k < N`, `rewiring`
/// in `[0, 1]` (checked upstream). The edge count `N·k/2` never changes.
///
/// The rows live sorted in one buffer of `N·k` plus 2 per user `u32`s
/// (`GappedRows`), compacted into the graph at the end.
///
/// # Panics
/// If `N·k > 2^32 − 1` (refused by validation).
pub fn watts_strogatz(users: u32, k: u32, rewiring: f64, key: ReplicationKey) -> Graph {
    let n = users;
    let half = k / 2;
    let mut rows = GappedRows::ring_lattice(n, half);
    if rewiring > 0.0 {
        let mut scratch = Vec::new();
        for j in 1..=half {
            let stream = key.stream(j, Event::Network);
            // A rewiring reads three rows: u's and u + j's, a few hundred
            // bytes apart from the last rewiring's (too far apart for the
            // hardware prefetcher at low rewiring), and the new neighbour w's,
            // a random one two cache misses away (its place, then its
            // entries). All are fetched ahead for the users REWIRING_AHEAD
            // places further on, w's place twice as far ahead; the first
            // candidate for w is w nearly always.
            let first_candidate = |user: u32| {
                let mut generator = stream.generator(user);
                (generator.uniform() < rewiring).then(|| below(&mut generator, u64::from(n)) as u32)
            };
            for u in 0..n {
                if let Some(w) = u
                    .checked_add(2 * REWIRING_AHEAD)
                    .filter(|&a| a < n)
                    .and_then(first_candidate)
                {
                    rows.prefetch_place(w);
                }
                if let Some(ahead) = u.checked_add(REWIRING_AHEAD).filter(|&a| a < n)
                    && let Some(w) = first_candidate(ahead)
                {
                    rows.prefetch_row(ahead);
                    rows.prefetch_row(((u64::from(ahead) + u64::from(j)) % u64::from(n)) as u32);
                    rows.prefetch_row(w);
                }
                let mut generator = stream.generator(u);
                if generator.uniform() >= rewiring {
                    continue;
                }
                let Some(w) = non_neighbour(&mut generator, rows.row(u), u, n, &mut scratch) else {
                    continue;
                };
                let target = ((u64::from(u) + u64::from(j)) % u64::from(n)) as u32;
                rows.remove(u, target);
                rows.remove(target, u);
                rows.insert(u, w);
                rows.insert(w, u);
            }
        }
    }
    rows.into_graph()
}

/// The rows of a graph under construction, each sorted and contiguous, one
/// after the other in user order in one buffer with gaps between them: row `u`
/// is `buffer[starts[u]..starts[u] + lens[u]]`, its gap runs to `starts[u + 1]`
/// (`starts[N]` is the buffer's length).
///
/// An insertion into a row without a gap first opens one by shifting the rows
/// up to the nearest gap (on either side, the fewer rows) by one place. Rows
/// never change order, so the final compaction moves every row towards the
/// front and the buffer and `starts` become the graph's neighbours and offsets.
/// Bytes beyond the graph: `lens` and the slack, `4 + 4·slack` per user.
#[derive(Debug)]
struct GappedRows {
    /// `N + 1` entries, ascending; `starts[N] = buffer.len() <= u32::MAX`.
    starts: Vec<u32>,
    /// `N` row lengths.
    lens: Vec<u32>,
    buffer: Vec<u32>,
}

impl GappedRows {
    /// The ring lattice of `users` users, each joined to `u ± 1, …, u ± half`
    /// (mod N; `2·half < users`), with `WATTS_STROGATZ_SLACK` free places per
    /// row (fewer if the buffer would pass `u32::MAX` entries).
    ///
    /// # Panics
    /// If `N·2·half > 2^32 − 1`.
    fn ring_lattice(users: u32, half: u32) -> GappedRows {
        let n = u64::from(users);
        let degree = 2 * u64::from(half);
        debug_assert!(users == 0 || degree < n, "k = {degree} >= N = {users}");
        let total = half_edges(n * u64::from(half)) as u64;
        let slack = (WATTS_STROGATZ_SLACK * n).min(u64::from(u32::MAX) - total);
        let start = |u: u64| (u * degree + u * slack / n.max(1)) as u32;
        let starts: Vec<u32> = (0..=n).map(start).collect();
        let mut buffer = vec![0u32; starts[users as usize] as usize];
        for u in 0..n {
            // Ascending: the users past N − 1 wrapped to 0.., the users below u,
            // the users above u, the users below 0 wrapped to ..N − 1.
            let wrapped_up = (u + u64::from(half)).saturating_sub(n - 1);
            let wrapped_down = u64::from(half).saturating_sub(u);
            let row = (0..wrapped_up)
                .chain(u.saturating_sub(u64::from(half))..u)
                .chain(u + 1..=(u + u64::from(half)).min(n - 1))
                .chain(n - wrapped_down..n);
            let at = starts[u as usize] as usize;
            for (slot, v) in buffer[at..at + degree as usize].iter_mut().zip(row) {
                *slot = v as u32;
            }
        }
        GappedRows {
            starts,
            lens: vec![degree as u32; users as usize],
            buffer,
        }
    }

    /// User `u`'s neighbours, ascending.
    #[inline]
    fn row(&self, u: u32) -> &[u32] {
        let start = self.starts[u as usize] as usize;
        &self.buffer[start..start + self.lens[u as usize] as usize]
    }

    /// Asks the CPU to fetch the place of row `u` (its start and length).
    #[inline]
    fn prefetch_place(&self, u: u32) {
        prefetch(&self.starts[u as usize]);
        prefetch(&self.lens[u as usize]);
    }

    /// Asks the CPU to fetch the first entries of row `u` (its place fetched
    /// before, for it is read here).
    #[inline]
    fn prefetch_row(&self, u: u32) {
        let start = self.starts[u as usize] as usize;
        let len = self.lens[u as usize] as usize;
        // A cache line holds 16 entries; a binary search touches every line
        // of a row of up to 64.
        for at in (start..start + len.min(64)).step_by(16) {
            prefetch(&self.buffer[at]);
        }
    }

    /// Free places after row `u`.
    #[inline]
    fn gap(&self, u: usize) -> u32 {
        self.starts[u + 1] - self.starts[u] - self.lens[u]
    }

    /// Removes `value` (present) from row `u`.
    fn remove(&mut self, u: u32, value: u32) {
        let at = self
            .row(u)
            .binary_search(&value)
            .expect("a rewired lattice edge is present on both sides");
        let start = self.starts[u as usize] as usize;
        let end = start + self.lens[u as usize] as usize;
        self.buffer.copy_within(start + at + 1..end, start + at);
        self.lens[u as usize] -= 1;
    }

    /// Inserts `value` (absent) into row `u`, opening a gap after it first if
    /// it has none.
    fn insert(&mut self, u: u32, value: u32) {
        let at = self.row(u).binary_search(&value).unwrap_err();
        if self.gap(u as usize) == 0 {
            self.open_gap_after(u as usize);
        }
        let start = self.starts[u as usize] as usize;
        let end = start + self.lens[u as usize] as usize;
        self.buffer.copy_within(start + at..end, start + at + 1);
        self.buffer[start + at] = value;
        self.lens[u as usize] += 1;
    }

    /// Gives the full row `u` one free place: shifts the rows between it and
    /// the nearest row with a gap (the fewer rows; after it, rows `u+1..=x`
    /// move up; before it, rows `y+1..=u` move down) by one place. Between them
    /// no row has a gap, so the shifted rows are one contiguous block.
    fn open_gap_after(&mut self, u: usize) {
        let n = self.lens.len();
        for distance in 1..n {
            if let Some(x) = u.checked_add(distance).filter(|&x| x < n)
                && self.gap(x) > 0
            {
                let (from, to) = (
                    self.starts[u + 1] as usize,
                    (self.starts[x] + self.lens[x]) as usize,
                );
                self.buffer.copy_within(from..to, from + 1);
                for start in &mut self.starts[u + 1..=x] {
                    *start += 1;
                }
                return;
            }
            if let Some(y) = u.checked_sub(distance)
                && self.gap(y) > 0
            {
                let (from, to) = (
                    self.starts[y + 1] as usize,
                    (self.starts[u] + self.lens[u]) as usize,
                );
                self.buffer.copy_within(from..to, from - 1);
                for start in &mut self.starts[y + 1..=u] {
                    *start -= 1;
                }
                return;
            }
        }
        unreachable!("an insertion follows a removal, so some row has a gap");
    }

    /// The graph of the rows: each moved down to the end of the one before
    /// (never up, as the gaps only close), the buffer cut to `2E` and its tail
    /// given back.
    fn into_graph(self) -> Graph {
        let GappedRows {
            mut starts,
            lens,
            mut buffer,
        } = self;
        let n = lens.len();
        let mut end = 0u32;
        for (u, &len) in lens.iter().enumerate() {
            let start = starts[u];
            buffer.copy_within(start as usize..(start + len) as usize, end as usize);
            starts[u] = end;
            end += len;
        }
        drop(lens);
        starts[n] = end;
        buffer.truncate(end as usize);
        buffer.shrink_to_fit();
        Graph::from_csr(starts, buffer)
    }
}

/// A user drawn uniformly among the users `w ≠ u` of `0..n` not in `u`'s
/// sorted `row`, or `None` if there is none: by rejection, or, when fewer than
/// a quarter of the users are candidates, as the candidate of a uniform rank
/// (`scratch` is working space).
fn non_neighbour(
    generator: &mut DrawRng,
    row: &[u32],
    u: u32,
    n: u32,
    scratch: &mut Vec<u32>,
) -> Option<u32> {
    let candidates = u64::from(n) - 1 - row.len() as u64;
    if candidates == 0 {
        return None;
    }
    if 4 * candidates >= u64::from(n) {
        loop {
            let w = below(generator, u64::from(n)) as u32;
            if w != u && row.binary_search(&w).is_err() {
                return Some(w);
            }
        }
    }
    scratch.clear();
    scratch.extend_from_slice(row);
    let at = scratch.binary_search(&u).unwrap_err();
    scratch.insert(at, u);
    Some(nth_missing(scratch, below(generator, candidates) as u32))
}

/// The `rank`-th (from 0) number missing from the sorted, distinct `taken`.
fn nth_missing(taken: &[u32], rank: u32) -> u32 {
    // Below taken[i] exactly taken[i] - i numbers are missing, a non-decreasing
    // count: the answer lies beyond every taken[i] with at most `rank` below it.
    let before = taken
        .iter()
        .enumerate()
        .take_while(|&(i, &t)| t - i as u32 <= rank)
        .count();
    rank + before as u32
}

/// Barabási–Albert preferential attachment with `m = mean_degree / 2`: users
/// `0..=m` form a clique; each later user `u`, in number order, draws `m`
/// distinct earlier users one at a time, each draw proportional to degree (a
/// uniform half-edge of the graph so far), a repeat drawn again, the degrees
/// frozen while `u` draws; then its `m` edges are added (MODEL.md v2;
/// Barabási & Albert 1999).
///
/// `u`'s draws come from its stream of round 0. `m >= 1`, `N >= m + 1` (checked
/// upstream). `E = m(m+1)/2 + (N − m − 1)·m`, every degree at least `m`.
///
/// The edges are numbered in the order they are added: the clique's pairs
/// `(a, b)`, `a < b`, in increasing order, then each later user's `m` edges
/// `(target, u)` in draw order; a half-edge `h` is edge `⌊h/2⌋`'s first end if
/// `h` is even, its second if odd. A later edge's source is implicit (edge
/// `c + i` belongs to user `m + 1 + ⌊i/m⌋`, `c` the clique's edge count), so
/// only its target is stored, in the first entries of the buffer that becomes
/// the neighbours. Then the rows are built in place: each later user's `m`
/// targets moved to the front of its row in descending user order and sorted,
/// the clique rows written, and every later user appended to its targets' rows
/// in ascending order (rows: targets `< u`, then sources `> u`). Beyond the
/// graph: one `u32` per user (the draws' marks, then the rows' cursors).
///
/// # Panics
/// If `2E > 2^32 − 1` (refused by validation).
pub fn barabasi_albert(users: u32, m: u32, key: ReplicationKey) -> Graph {
    let n = users as usize;
    let m_len = m as usize;
    // Users 0..clique_users form the clique (all users if N <= m).
    let clique_users = m.saturating_add(1).min(users);
    let c = u64::from(clique_users);
    let clique = c * c.saturating_sub(1) / 2;
    let later_edges = u64::from(users - clique_users) * u64::from(m);
    let mut neighbours = vec![0u32; half_edges(clique + later_edges)];
    // first_pair[a]: the number of the clique's edge (a, a + 1).
    let first_pair: Vec<u64> = (0..c)
        .map(|a| a * (c - 1) - a * a.saturating_sub(1) / 2)
        .collect();
    let stream = key.stream(0, Event::Network);
    let later_len = later_edges as usize;
    // First every later user's first m draws, into the second half of the
    // buffer (free until the rows are built): a half-edge is below
    // 2E <= 2^32 − 1, so it fits a u32. Then the draws are resolved in order
    // with their targets' slots fetched ahead (the slot a draw reads belongs
    // to an earlier user, so it is final when read): a draw costs a cache miss
    // only where the fetch came too late.
    let (targets, first_draws) = neighbours.split_at_mut(later_len);
    let first_draws = &mut first_draws[..later_len];
    for (u, draws) in (clique_users..users).zip(first_draws.chunks_exact_mut(m_len)) {
        let mut generator = stream.generator(u);
        let frozen = 2 * (clique + u64::from(u - clique_users) * u64::from(m));
        for draw in draws {
            *draw = below(&mut generator, frozen) as u32;
        }
    }
    let first_draws = &*first_draws;
    // The user a half-edge stands for: a clique end, a later edge's source
    // (implicit), or its target (a slot of `targets`, final by then).
    let by_m = DivideBy::new(m);
    let resolve = |targets: &[u32], half_edge: u64| -> u32 {
        let edge = half_edge / 2;
        let first_end = half_edge.is_multiple_of(2);
        if edge < clique {
            let a = first_pair.partition_point(|&first| first <= edge) - 1;
            if first_end {
                a as u32
            } else {
                (a as u64 + 1 + edge - first_pair[a]) as u32
            }
        } else {
            // Below 2^32: 2E fits a u32. Both ends are looked up and one
            // chosen without a branch (which end it is is a coin toss).
            let later = (edge - clique) as u32;
            let target = targets[later as usize];
            let source = clique_users + by_m.quotient(later);
            std::hint::select_unpredictable(first_end, target, source)
        }
    };
    // chosen_by[v] == u: v is already among u's draws (for a large m; a small
    // one compares with the user's slots so far, which are in cache).
    let mut chosen_by = if m_len > LOCAL_REPEAT_CHECK {
        vec![u32::MAX; n]
    } else {
        Vec::new()
    };
    const AHEAD: usize = 32;
    for (i, u) in (clique_users..users).enumerate() {
        let base = i * m_len;
        let frozen = 2 * (clique + base as u64);
        let mut filled = 0;
        // The user's generator past its first m draws, for repeats.
        let mut more: Option<DrawRng> = None;
        let mut taken = 0;
        while filled < m_len {
            let half_edge = if taken < m_len {
                if let Some(&ahead) = first_draws.get(base + taken + AHEAD) {
                    // Either end (a branch on which would be a coin toss).
                    let later = (u64::from(ahead) / 2).saturating_sub(clique);
                    prefetch(&targets[later as usize]);
                }
                u64::from(first_draws[base + taken])
            } else {
                let generator =
                    more.get_or_insert_with(|| stream.generator(u).skipped(u64::from(m)));
                below(generator, frozen)
            };
            taken += 1;
            let v = resolve(targets, half_edge);
            let repeat = if m_len > LOCAL_REPEAT_CHECK {
                std::mem::replace(&mut chosen_by[v as usize], u) == u
            } else if let Some(window) = targets.get(base..base + LOCAL_REPEAT_CHECK) {
                // All 16 slots compared at once, the unfilled ones masked.
                let equal = window
                    .iter()
                    .enumerate()
                    .fold(0u32, |equal, (k, &t)| equal | u32::from(t == v) << k);
                equal & ((1 << filled) - 1) != 0
            } else {
                targets[base..base + filled].contains(&v)
            };
            if !repeat {
                targets[base + filled] = v;
                filled += 1;
            }
        }
    }
    let drawn = later_len;
    // Degrees: the clique's c − 1, a later user's m targets, and the times a
    // user was drawn; then their prefix sums.
    let own = |u: usize| {
        if u < clique_users as usize {
            clique_users - 1
        } else {
            m
        }
    };
    let mut offsets = vec![0u32; n + 1];
    for (i, &v) in neighbours[..drawn].iter().enumerate() {
        if let Some(&ahead) = neighbours[..drawn].get(i + AHEAD) {
            prefetch(&offsets[ahead as usize + 1]);
        }
        offsets[v as usize + 1] += 1;
    }
    for u in 0..n {
        offsets[u + 1] += offsets[u] + own(u);
    }
    // Later user u's targets, at (u − clique_users)·m, go to the front of its
    // row, offsets[u] >= 2·(clique + (u − clique_users)·m): descending u never
    // overwrites an unmoved user's targets.
    for u in (clique_users as usize..n).rev() {
        let source = (u - clique_users as usize) * m_len;
        let destination = offsets[u] as usize;
        neighbours.copy_within(source..source + m_len, destination);
        sort_short(&mut neighbours[destination..destination + m_len]);
    }
    for a in 0..clique_users {
        let start = offsets[a as usize] as usize;
        let row = (0..clique_users).filter(|&b| b != a);
        for (slot, b) in neighbours[start..].iter_mut().zip(row) {
            *slot = b;
        }
    }
    // cursor[v]: where v's next source goes, after its own part.
    let mut cursor = chosen_by;
    cursor.clear();
    cursor.extend((0..n).map(|v| offsets[v] + own(v)));
    // The rows a later user's sources go to are fetched `AHEAD_USERS` users
    // ahead (their cursors twice as far).
    const AHEAD_USERS: usize = 8;
    for u in clique_users as usize..n {
        if u + 2 * AHEAD_USERS < n {
            let start = offsets[u + 2 * AHEAD_USERS] as usize;
            for &v in &neighbours[start..start + m_len] {
                prefetch(&cursor[v as usize]);
            }
        }
        if u + AHEAD_USERS < n {
            let start = offsets[u + AHEAD_USERS] as usize;
            for &v in &neighbours[start..start + m_len] {
                if let Some(slot) = neighbours.get(cursor[v as usize] as usize) {
                    prefetch(slot);
                }
            }
        }
        let start = offsets[u] as usize;
        for i in start..start + m_len {
            let v = neighbours[i] as usize;
            neighbours[cursor[v] as usize] = u as u32;
            cursor[v] += 1;
        }
    }
    debug_assert!((0..n).all(|v| cursor[v] == offsets[v + 1]));
    Graph::from_csr(offsets, neighbours)
}

/// Today's generators as they were before building in place (an edge list or
/// per-user rows, then `Graph::from_edges`): the in-place ones must give
/// exactly their graphs.
#[cfg(test)]
mod reference {
    use super::*;

    /// The edge-list Erdős–Rényi.
    pub(super) fn erdos_renyi(users: u32, mean_degree: f64, key: ReplicationKey) -> Graph {
        let mut edges = Vec::new();
        if users >= 2 && mean_degree > 0.0 {
            let p = mean_degree / f64::from(users - 1);
            let stream = key.stream(0, Event::Network);
            let n = u64::from(users);
            if p >= 1.0 {
                for u in 0..users {
                    for v in u + 1..users {
                        edges.push((u, v));
                    }
                }
            } else {
                // ln(1 − p) without cancellation for small p.
                let log_q = (-p).ln_1p();
                let expected = p * (n as f64) * ((n - 1) as f64) / 2.0;
                edges.reserve((expected + 6.0 * expected.sqrt()) as usize);
                for u in 0..users {
                    let mut generator = stream.generator(u);
                    let mut v = u64::from(u);
                    loop {
                        let skip = (generator.open_uniform().ln() / log_q).floor();
                        if skip >= (n - v) as f64 {
                            break;
                        }
                        v += 1 + skip as u64;
                        if v >= n {
                            break;
                        }
                        edges.push((u, v as u32));
                    }
                }
            }
        }
        Graph::from_edges(users, &edges)
    }

    /// The per-user-rows Watts–Strogatz.
    pub(super) fn watts_strogatz(users: u32, k: u32, rewiring: f64, key: ReplicationKey) -> Graph {
        let n = users;
        let half = k / 2;
        // Rows are kept sorted throughout (binary search for adjacency, sorted
        // insertion), so the graph needs no sorting at the end.
        let mut adjacency: Vec<Vec<u32>> = (0..n)
            .map(|u| {
                let mut row = Vec::with_capacity(k as usize + 2);
                // u ± j mod N without a division (j < N).
                for j in (1..=half).rev() {
                    row.push(if u >= j { u - j } else { u + (n - j) });
                }
                for j in 1..=half {
                    row.push(if j < n - u { u + j } else { j - (n - u) });
                }
                // Only rows that wrap around the ring are out of order.
                if !row.is_sorted() {
                    row.sort_unstable();
                }
                row
            })
            .collect();
        if rewiring > 0.0 {
            let mut scratch = Vec::new();
            for j in 1..=half {
                let stream = key.stream(j, Event::Network);
                for u in 0..n {
                    let mut generator = stream.generator(u);
                    if generator.uniform() >= rewiring {
                        continue;
                    }
                    let Some(w) =
                        non_neighbour(&mut generator, &adjacency[u as usize], u, n, &mut scratch)
                    else {
                        continue;
                    };
                    let target = ((u64::from(u) + u64::from(j)) % u64::from(n)) as u32;
                    remove(&mut adjacency[u as usize], target);
                    remove(&mut adjacency[target as usize], u);
                    insert(&mut adjacency[u as usize], w);
                    insert(&mut adjacency[w as usize], u);
                }
            }
        }
        let edges: Vec<(u32, u32)> = adjacency
            .iter()
            .enumerate()
            .flat_map(|(u, row)| {
                row.iter()
                    .filter(move |&&v| v > u as u32)
                    .map(move |&v| (u as u32, v))
            })
            .collect();
        Graph::from_edges(n, &edges)
    }

    /// Removes `value` (present) from the sorted `row`.
    fn remove(row: &mut Vec<u32>, value: u32) {
        let at = row
            .binary_search(&value)
            .expect("a rewired lattice edge is present on both sides");
        row.remove(at);
    }

    /// Inserts `value` (absent) into the sorted `row`.
    fn insert(row: &mut Vec<u32>, value: u32) {
        let at = row.binary_search(&value).unwrap_err();
        row.insert(at, value);
    }

    /// The edge-list Barabási–Albert.
    pub(super) fn barabasi_albert(users: u32, m: u32, key: ReplicationKey) -> Graph {
        let n = u64::from(users);
        let m64 = u64::from(m);
        let clique = m64 * (m64 + 1) / 2;
        let total = clique + n.saturating_sub(m64 + 1) * m64;
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(total as usize);
        for a in 0..=m.min(users.saturating_sub(1)) {
            for b in a + 1..=m.min(users.saturating_sub(1)) {
                edges.push((a, b));
            }
        }
        let stream = key.stream(0, Event::Network);
        // chosen_by[v] == u: v is already among u's draws.
        let mut chosen_by = vec![u32::MAX; users as usize];
        let mut chosen = Vec::with_capacity(m as usize);
        for u in m.saturating_add(1)..users {
            let mut generator = stream.generator(u);
            let frozen = 2 * edges.len() as u64;
            chosen.clear();
            while chosen.len() < m as usize {
                let half_edge = below(&mut generator, frozen);
                let (a, b) = edges[(half_edge / 2) as usize];
                let v = if half_edge.is_multiple_of(2) { a } else { b };
                if chosen_by[v as usize] != u {
                    chosen_by[v as usize] = u;
                    chosen.push(v);
                }
            }
            for &v in &chosen {
                edges.push((v, u));
            }
        }
        Graph::from_edges(users, &edges)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Panics unless `graph` is simple and symmetric: neighbours strictly
    /// ascending (no duplicates), no self-loops, each edge on both sides.
    pub(crate) fn assert_simple(graph: &Graph) {
        for u in 0..graph.users() {
            let row = graph.neighbours(u);
            assert!(row.windows(2).all(|w| w[0] < w[1]), "user {u}: {row:?}");
            assert!(!row.contains(&u), "self-loop at {u}");
            for &v in row {
                assert!(v < graph.users());
                assert!(
                    graph.neighbours(v).binary_search(&u).is_ok(),
                    "({u}, {v}) one-sided"
                );
            }
        }
    }

    fn key(seed: u64) -> ReplicationKey {
        ReplicationKey::new(seed, 0)
    }

    #[test]
    fn erdos_renyi_edge_count_and_mean_degree_match_binomial_within_five_se() {
        for (users, mean_degree, seed) in
            [(20_000u32, 10.0, 1u64), (3_000, 2.5, 2), (500, 250.0, 3)]
        {
            let graph = erdos_renyi(users, mean_degree, key(seed));
            assert_simple(&graph);
            let pairs = f64::from(users) * f64::from(users - 1) / 2.0;
            let p = mean_degree / f64::from(users - 1);
            let se = (pairs * p * (1.0 - p)).sqrt();
            let edges = graph.edges() as f64;
            assert!(
                (edges - pairs * p).abs() < 5.0 * se,
                "{users} {mean_degree}: {edges} vs {}",
                pairs * p
            );
            let observed_mean = 2.0 * edges / f64::from(users);
            assert!((observed_mean - mean_degree).abs() < 5.0 * 2.0 * se / f64::from(users));
        }
    }

    #[test]
    fn erdos_renyi_pairs_are_independent_with_probability_p() {
        // Each of the 45 pairs of 10 users, over 4000 graphs: its frequency is
        // Binomial(4000, p); all 45 within 5 SE.
        let (users, p) = (10u32, 0.3);
        let mut counts = vec![0u32; 100];
        let graphs = 4_000;
        for seed in 0..graphs {
            let graph = erdos_renyi(users, p * 9.0, key(seed));
            for (u, v) in graph.edge_list() {
                counts[(u * 10 + v) as usize] += 1;
            }
        }
        let se = (f64::from(graphs as u32) * p * (1.0 - p)).sqrt();
        for u in 0..users {
            for v in u + 1..users {
                let count = f64::from(counts[(u * 10 + v) as usize]);
                assert!((count - 4000.0 * p).abs() < 5.0 * se, "({u}, {v}): {count}");
            }
        }
    }

    #[test]
    fn erdos_renyi_extremes_are_empty_and_complete() {
        assert_eq!(erdos_renyi(50, 0.0, key(1)).edges(), 0);
        assert_eq!(erdos_renyi(50, 49.0, key(1)).edges(), 50 * 49 / 2);
        assert_eq!(erdos_renyi(1, 0.0, key(1)).edges(), 0);
        assert_eq!(erdos_renyi(2, 1.0, key(1)).edges(), 1);
    }

    #[test]
    fn watts_strogatz_without_rewiring_is_the_ring_lattice_of_degree_k() {
        let graph = watts_strogatz(1_000, 6, 0.0, key(1));
        assert_simple(&graph);
        assert_eq!(graph.edges(), 3_000);
        assert!((0..1_000).all(|u| graph.degree(u) == 6));
        assert_eq!(graph.neighbours(0), &[1, 2, 3, 997, 998, 999]);
        let graph = watts_strogatz(3, 2, 0.0, key(1));
        assert_eq!(graph.edges(), 3);
    }

    #[test]
    fn watts_strogatz_rewiring_keeps_the_edge_count_and_moves_the_expected_share() {
        for (users, k) in [(10_000u32, 10u32), (12, 10), (5, 4)] {
            for rewiring in [0.3, 1.0] {
                let graph = watts_strogatz(users, k, rewiring, key(7));
                assert_simple(&graph);
                assert_eq!(graph.edges(), u64::from(users) * u64::from(k) / 2);
            }
        }
        // At rewiring p on a large ring, each lattice edge is rewired with
        // probability p (and rarely lands back on the lattice): the share of
        // non-lattice edges is p within 5 SE (minus O(k/N)).
        let (users, k, p) = (20_000u32, 10u32, 0.3);
        let graph = watts_strogatz(users, k, p, key(3));
        let off_lattice = graph
            .edge_list()
            .filter(|&(u, v)| {
                let d = v - u;
                d > k / 2 && d < users - k / 2
            })
            .count() as f64;
        let m = f64::from(users * k / 2);
        let se = (m * p * (1.0 - p)).sqrt();
        assert!(
            (off_lattice - m * p).abs() < 5.0 * se + m * 1e-3,
            "{off_lattice} vs {}",
            m * p
        );
    }

    #[test]
    fn barabasi_albert_has_minimum_degree_m_and_the_known_edge_count() {
        for (users, m) in [(5_000u32, 5u32), (100, 1), (4, 3), (30, 25)] {
            let graph = barabasi_albert(users, m, key(11));
            assert_simple(&graph);
            let expected =
                u64::from(m) * u64::from(m + 1) / 2 + u64::from(users - m - 1) * u64::from(m);
            assert_eq!(graph.edges(), expected, "N = {users}, m = {m}");
            assert_eq!((0..users).map(|u| graph.degree(u)).min(), Some(m));
            // Each later user's m edges go to earlier users.
            for u in m + 1..users {
                assert_eq!(
                    graph.neighbours(u).iter().filter(|&&v| v < u).count(),
                    m as usize
                );
            }
        }
    }

    #[test]
    fn barabasi_albert_third_user_attaches_proportionally_to_degree() {
        // m = 1: users 0-1 joined; user 2 picks 0 or 1 (1/2 each); user 3 then
        // picks the centre of the path (degree 2) with probability 2/4.
        let graphs = 8_000u64;
        let mut centre = 0u32;
        for seed in 0..graphs {
            let graph = barabasi_albert(4, 1, key(seed));
            let hub = graph.neighbours(2)[0];
            if graph.neighbours(3).contains(&hub) {
                centre += 1;
            }
        }
        let se = (graphs as f64 * 0.25).sqrt();
        assert!(
            (f64::from(centre) - graphs as f64 / 2.0).abs() < 5.0 * se,
            "{centre}"
        );
    }

    #[test]
    fn a_clique_alone_when_the_population_is_m_plus_one() {
        let graph = barabasi_albert(4, 3, key(1));
        assert_eq!(graph.edges(), 6);
        assert!((0..4).all(|u| graph.degree(u) == 3));
    }

    #[test]
    fn the_new_neighbour_is_uniform_among_non_neighbours_on_both_paths() {
        // Rejection path (7 of 12 users are candidates) and rank path (2 of 12).
        let stream = ReplicationKey::new(1, 0).stream(0, Event::Network);
        let mut scratch = Vec::new();
        for (row, expected) in [
            (vec![1u32, 2, 10, 11], vec![3u32, 4, 5, 6, 7, 8, 9]),
            (vec![1, 2, 3, 4, 5, 7, 9, 10, 11], vec![6, 8]),
        ] {
            let draws = 70_000u32;
            let mut counts = [0u32; 12];
            for k in 0..draws {
                let mut generator = stream.generator(k);
                let w = non_neighbour(&mut generator, &row, 0, 12, &mut scratch).unwrap();
                counts[w as usize] += 1;
            }
            let p = 1.0 / expected.len() as f64;
            let se = (f64::from(draws) * p * (1.0 - p)).sqrt();
            for w in 0..12u32 {
                let count = f64::from(counts[w as usize]);
                if expected.contains(&w) {
                    assert!(
                        (count - f64::from(draws) * p).abs() < 5.0 * se,
                        "{w}: {count}"
                    );
                } else {
                    assert_eq!(count, 0.0, "{w} is u or a neighbour");
                }
            }
        }
        let full: Vec<u32> = (1..12).collect();
        assert_eq!(
            non_neighbour(&mut stream.generator(0), &full, 0, 12, &mut scratch),
            None
        );
    }

    #[test]
    fn erdos_renyi_degrees_follow_the_binomial_distribution() {
        // N = 20000, p = 5/(N−1): degree k has probability
        // C(N−1, k) p^k (1−p)^(N−1−k); the count of users of each degree 0..=12
        // is within 5 SE of N times it (users' degrees are nearly independent).
        let users = 20_000u32;
        let graph = erdos_renyi(users, 5.0, key(21));
        let p = 5.0 / f64::from(users - 1);
        let mut probability = (1.0 - p).powi(users as i32 - 1);
        for k in 0..=12u32 {
            let observed = (0..users).filter(|&u| graph.degree(u) == k).count() as f64;
            let expected = f64::from(users) * probability;
            let se = (expected * (1.0 - probability)).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * se + 1.0,
                "k = {k}: {observed} vs {expected}"
            );
            probability *= f64::from(users - 1 - k) / f64::from(k + 1) * p / (1.0 - p);
        }
    }

    #[test]
    fn in_place_generators_give_exactly_the_reference_graphs() {
        // Erdős–Rényi: tiny N, sparse and dense, p >= 1 (complete), mean 0.
        for (users, mean_degree, seed) in [
            (0u32, 1.0, 1u64),
            (1, 0.5, 1),
            (2, 1.0, 2),
            (2, 0.3, 3),
            (7, 2.0, 4),
            (50, 49.0, 5),
            (60, 59.5, 6),
            (300, 0.5, 7),
            (2_000, 10.0, 8),
            (500, 250.0, 9),
            (1_000, 0.0, 10),
        ] {
            let graph = erdos_renyi(users, mean_degree, key(seed));
            assert!(graph.is_simple_csr());
            assert_eq!(
                graph,
                reference::erdos_renyi(users, mean_degree, key(seed)),
                "ER N = {users}, mean degree {mean_degree}, seed {seed}"
            );
        }
        // Watts–Strogatz: rewiring 0, 0.3, 1; k up to N − 1 (dense: the rank path
        // and rows that wrap on both sides); N = k + 1.
        for (users, k, seed) in [
            (3u32, 2u32, 1u64),
            (5, 4, 2),
            (9, 6, 3),
            (12, 10, 4),
            (11, 10, 5),
            (40, 8, 6),
            (2_000, 10, 7),
            (1_000, 50, 8),
        ] {
            for rewiring in [0.0, 0.3, 1.0] {
                let graph = watts_strogatz(users, k, rewiring, key(seed));
                assert!(graph.is_simple_csr());
                assert_eq!(
                    graph,
                    reference::watts_strogatz(users, k, rewiring, key(seed)),
                    "WS N = {users}, k = {k}, rewiring {rewiring}, seed {seed}"
                );
                assert_eq!(
                    graph.heap_bytes(),
                    4 * (users as usize + 1) + 4 * (users * k) as usize
                );
            }
        }
        // Barabási–Albert: N = m + 1 (the clique alone), N <= m, m = 1, large m.
        for (users, m, seed) in [
            (0u32, 2u32, 1u64),
            (1, 1, 1),
            (2, 1, 2),
            (4, 3, 3),
            (3, 5, 4),
            (5, 3, 5),
            (100, 1, 6),
            (2_000, 5, 7),
            (1_000, 25, 8),
            (60, 29, 9),
            // Large enough for the fetches ahead and the 16-slot window of
            // repeats, at its widest m and just past it.
            (100_000, 3, 10),
            (30_000, 16, 11),
            (20_000, 17, 12),
        ] {
            let graph = barabasi_albert(users, m, key(seed));
            assert!(graph.is_simple_csr());
            assert_eq!(
                graph,
                reference::barabasi_albert(users, m, key(seed)),
                "BA N = {users}, m = {m}, seed {seed}"
            );
        }
    }

    /// `DivideBy` gives `/` for divisors 1 to 300 and the largest, and
    /// numerators at 0, around multiples of the divisor, and near 2^32.
    #[test]
    fn division_by_multiplication_is_exact() {
        for d in (1..=300u32).chain([u32::MAX - 1, u32::MAX, 1 << 31, 12_345_678]) {
            let by = DivideBy::new(d);
            let mut numerators = vec![0u32, 1, u32::MAX, u32::MAX - 1, 1 << 31];
            for k in [1u32, 2, 3, 1000, u32::MAX / d] {
                let multiple = k.saturating_mul(d);
                numerators.extend([
                    multiple.saturating_sub(1),
                    multiple,
                    multiple.saturating_add(1),
                ]);
            }
            for n in numerators {
                assert_eq!(by.quotient(n), n / d, "{n} / {d}");
            }
        }
    }

    /// `sort_short` sorts every row of length 0 to 20 as `sort` does.
    #[test]
    fn short_rows_are_sorted() {
        let mut state = 7u64;
        for len in 0..=20usize {
            for _ in 0..200 {
                let mut row: Vec<u32> = (0..len)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 59) as u32
                    })
                    .collect();
                let mut sorted = row.clone();
                sorted.sort();
                sort_short(&mut row);
                assert_eq!(row, sorted);
            }
        }
    }

    #[test]
    fn in_place_generators_match_the_reference_on_many_small_graphs() {
        // 60 parameter sets spread over small N, every degree from sparse to
        // complete, so that rows wrap, fill, overflow their slack and empty.
        for seed in 0..60u64 {
            let users = 2 + (seed * 37 % 61) as u32;
            let share = (seed % 7) as f64 / 6.0;
            let mean_degree = share * f64::from(users - 1);
            assert_eq!(
                erdos_renyi(users, mean_degree, key(seed)),
                reference::erdos_renyi(users, mean_degree, key(seed)),
                "ER N = {users}, mean degree {mean_degree}"
            );
            if users >= 3 {
                let k = 2 + 2 * (seed as u32 % ((users - 1) / 2));
                let rewiring = [0.05, 0.5, 1.0][(seed % 3) as usize];
                assert_eq!(
                    watts_strogatz(users, k, rewiring, key(seed)),
                    reference::watts_strogatz(users, k, rewiring, key(seed)),
                    "WS N = {users}, k = {k}, rewiring {rewiring}"
                );
            }
            let m = 1 + seed as u32 % (users - 1);
            assert_eq!(
                barabasi_albert(users, m, key(seed)),
                reference::barabasi_albert(users, m, key(seed)),
                "BA N = {users}, m = {m}"
            );
        }
    }

    /// Rows `0..N` of `rows` as vectors.
    fn rows_of(rows: &GappedRows) -> Vec<Vec<u32>> {
        (0..rows.lens.len() as u32)
            .map(|u| rows.row(u).to_vec())
            .collect()
    }

    #[test]
    fn gapped_rows_open_a_gap_at_the_nearest_row_on_either_side_and_compact() {
        // The ring lattice of 6 users, k = 2, two free places per row.
        let mut rows = GappedRows::ring_lattice(6, 1);
        assert_eq!(rows.starts, vec![0, 4, 8, 12, 16, 20, 24]);
        assert_eq!(rows_of(&rows)[0], vec![1, 5]);
        assert_eq!(rows_of(&rows)[5], vec![0, 4]);
        // Edges (0, 2), (2, 5), (2, 4): row 2 is full at its third, so row 3
        // (nearest, with a gap) shifts up by one.
        for (a, b) in [(2, 0), (0, 2), (2, 5), (5, 2), (2, 4), (4, 2)] {
            rows.insert(a, b);
        }
        assert_eq!(rows.starts[3], 13);
        assert_eq!(rows_of(&rows)[2], vec![0, 1, 3, 4, 5]);
        assert_eq!(rows_of(&rows)[3], vec![2, 4]);
        // Edges (1, 5), (3, 5): row 5 is full and ends the buffer, so row 4
        // (below, with a gap) shifts down by one.
        for (a, b) in [(5, 1), (1, 5), (5, 3), (3, 5)] {
            rows.insert(a, b);
        }
        assert_eq!(rows.starts[5], 19);
        assert_eq!(rows_of(&rows)[5], vec![0, 1, 2, 3, 4]);
        assert_eq!(rows_of(&rows)[4], vec![2, 3, 5]);
        rows.remove(2, 1);
        rows.remove(1, 2);
        let expected = rows_of(&rows);
        assert_eq!(
            expected,
            vec![
                vec![1, 2, 5],
                vec![0, 5],
                vec![0, 3, 4, 5],
                vec![2, 4, 5],
                vec![2, 3, 5],
                vec![0, 1, 2, 3, 4],
            ]
        );
        let graph = rows.into_graph();
        assert_simple(&graph);
        for (u, row) in expected.iter().enumerate() {
            assert_eq!(graph.neighbours(u as u32), row.as_slice());
        }
        assert_eq!(graph.heap_bytes(), 4 * 7 + 4 * 20);
        assert_eq!(graph.offsets()[6] as usize, graph.half_edges().len());
    }

    #[test]
    fn nth_missing_counts_the_gaps() {
        let taken = [0, 1, 5];
        let missing: Vec<u32> = (0..5).map(|r| nth_missing(&taken, r)).collect();
        assert_eq!(missing, vec![2, 3, 4, 6, 7]);
        assert_eq!(nth_missing(&[], 3), 3);
        assert_eq!(nth_missing(&[3], 3), 4);
    }

    #[test]
    fn dense_watts_strogatz_draws_among_the_few_candidates() {
        // N = 9, k = 6: each user has 2 non-neighbours, the rank path is used.
        for seed in 0..200 {
            let graph = watts_strogatz(9, 6, 1.0, key(seed));
            assert_simple(&graph);
            assert_eq!(graph.edges(), 27);
        }
    }
}
