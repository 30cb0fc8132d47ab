//! Counter-based random draws keyed by `(seed, replication, user, day, event)`
//! (MODEL.md, "Randomness"): the only source of randomness in the engine.
//!
//! A draw is a pure function of its key, so results do not depend on threads, the
//! order of work or how a study is split, and two runs that differ only in a
//! parameter (the brand value `V`, say) share every draw: common random numbers.
//! The hash is SplitMix64's: a key's streams are SplitMix64 sequences, which pass
//! BigCrush, started from a well-mixed key.

use std::convert::Infallible;

use rand::TryRng;

/// What a draw decides. Each event has its own stream, so adding a draw to one
/// event never shifts the draws of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    /// Initial trait: the favourite topic.
    Topic = 1,
    /// Initial trait: the click propensity `ε_u`.
    Propensity = 2,
    /// Initial trait: the churn probability `π_u` (drawn when first needed).
    ChurnPropensity = 3,
    Exposure = 4,
    ItemChoice = 5,
    Click = 6,
    Conversion = 7,
    Satisfaction = 8,
    Dormancy = 9,
    Churn = 10,
    /// Not a model event: SPSA's random ±1 signs of the optimiser (the replication
    /// is the optimiser's step, the user the tuned parameter's index).
    Perturbation = 11,
    /// `[[uncertain]]` values, drawn once per replication before day 0 (the
    /// "user" is the entry's index).
    Uncertain = 12,
    /// Not a model event: the random choices of a sensitivity design and its
    /// bootstrap (the replication is the purpose, the user the index).
    Design = 13,
    /// The social network's graph (MODEL.md v2, "Social-network word of
    /// mouth"): the "day" is the generator's round (Watts–Strogatz's `j`,
    /// else 0), the "user" the user whose draws they are. Keyed by `(S, j)`
    /// for per-replication graphs, by [`ReplicationKey::whole_study`] for fixed ones.
    Network = 14,
    /// `[[seeding]]` with `rule = "random"`: which candidates a seeding picks,
    /// drawn from the stream keyed by `(S, j, seeding index)` (day
    /// [`INITIAL_DAY`], the "user" is the seeding's index). (14 is the
    /// network generators'.)
    Seeding = 15,
}

/// The day used in the keys of initial traits, which belong to no simulated day.
pub const INITIAL_DAY: u32 = u32::MAX;

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective avalanche mix of 64 bits.
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bit `i` set where `mix64(first_key + i·γ) < threshold`, for `i` in 0..64:
/// 64 consecutive users' draws against one threshold. Written so that the
/// compiler computes it with 512-bit vectors (AVX-512 has 64-bit multiplies
/// and unsigned compares), eight users per instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn below_threshold_avx512(first_key: u64, threshold: u64) -> u64 {
    let mut mask = 0;
    for i in 0..64u64 {
        let key = first_key.wrapping_add(i.wrapping_mul(GOLDEN_GAMMA));
        mask |= u64::from(mix64(key) < threshold) << i;
    }
    mask
}

/// `(below, between)` for `i` in 0..64: bit `i` of `below` set where
/// `mix64(first_key + i·γ) < threshold`, of `between` where it is not below but
/// within `headrooms[i]` above it ([`Headroom::admits`]): 64 consecutive users'
/// draws, each hashed once, against the threshold and each user's room above
/// it. Eight users per instruction, like [`below_threshold_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn below_and_between_avx512(
    first_key: u64,
    threshold: u64,
    headrooms: &[Headroom; 64],
) -> (u64, u64) {
    let mut below = 0;
    let mut admitted = 0;
    for (i, &headroom) in headrooms.iter().enumerate() {
        let bits = mix64(first_key.wrapping_add((i as u64).wrapping_mul(GOLDEN_GAMMA)));
        below |= u64::from(bits < threshold) << i;
        admitted |= u64::from(headroom.admits_above(bits, threshold)) << i;
    }
    (below, admitted & !below)
}

/// Bit `i` set where `unit_interval(mix64(stream + (users[i] + 1)·γ)) <
/// probabilities[i]`, for `i` below `count`: [`EventStream::bernoulli`] of
/// any 64 users, each against its own probability. The uniform number is
/// `x·2^-53` with an integer `x < 2^53`, so its conversion and the comparison
/// are exact in every lane, as in the scalar draw. Eight users per
/// instruction, like [`below_threshold_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn bernoulli_each_avx512(
    stream: u64,
    users: &[u32; 64],
    probabilities: &[f64; 64],
    count: usize,
) -> u64 {
    let mut mask = 0;
    for (i, (&user, &p)) in users.iter().zip(probabilities).enumerate() {
        let key = stream.wrapping_add((u64::from(user) + 1).wrapping_mul(GOLDEN_GAMMA));
        mask |= u64::from(unit_interval(mix64(key)) < p) << i;
    }
    if count >= 64 {
        mask
    } else {
        mask & ((1u64 << count) - 1)
    }
}

/// `out[0][j] = mix64(first_key + lanes[j]·γ)` and `out[k][j] =
/// mix64(out[0][j] + k·γ)` for `j` below `count` rounded up to 8: the first
/// numbers of the generators of the users `lanes[j]` places after the first
/// ([`EventStream::generators_of`]). Eight users per instruction, like
/// [`below_threshold_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn generators_avx512(first_key: u64, lanes: &[u8; 64], count: usize, out: &mut [[u64; 64]]) {
    let Some((start, numbers)) = out.split_first_mut() else {
        return;
    };
    let end = count.div_ceil(8) * 8;
    for (bits, &lane) in start[..end].iter_mut().zip(&lanes[..end]) {
        *bits = mix64(first_key.wrapping_add(u64::from(lane).wrapping_mul(GOLDEN_GAMMA)));
    }
    for (k, row) in numbers.iter_mut().enumerate() {
        let step = (k as u64 + 1).wrapping_mul(GOLDEN_GAMMA);
        for (number, &bits) in row[..end].iter_mut().zip(&start[..end]) {
            *number = mix64(bits.wrapping_add(step));
        }
    }
}

/// A uniform number in [0, 1) from the top 53 bits: what
/// [`EventStream::uniform`] makes of a user's bits, and [`DrawRng::uniform`]
/// of a generator's number (for numbers drawn ahead,
/// [`EventStream::generators_of`]).
#[inline(always)]
pub fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The randomness of replication `j` of a study with master seed `S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationKey(u64);

impl ReplicationKey {
    pub fn new(seed: u64, replication: u32) -> Self {
        ReplicationKey(mix64(
            mix64(seed.wrapping_add(GOLDEN_GAMMA)) ^ u64::from(replication),
        ))
    }

    /// The randomness of the whole study of master seed `S`, shared by all its
    /// replications (a fixed graph). Distinct from every `new(S, j)`: the value
    /// mixed in is not a `u32` replication number.
    pub fn whole_study(seed: u64) -> Self {
        ReplicationKey(mix64(mix64(seed.wrapping_add(GOLDEN_GAMMA)) ^ (1u64 << 32)))
    }

    /// The stream of `event` on `day` (use [`INITIAL_DAY`] for initial traits).
    /// Compute it once per day and event, then draw per user.
    pub fn stream(self, day: u32, event: Event) -> EventStream {
        let day_event = (u64::from(day) << 8) | event as u64;
        EventStream(mix64(self.0 ^ mix64(day_event.wrapping_mul(GOLDEN_GAMMA))))
    }
}

/// The draws of one `(seed, replication, day, event)` for every user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventStream(u64);

impl EventStream {
    /// The first 64 random bits of `user`'s draw.
    #[inline(always)]
    fn bits(self, user: u32) -> u64 {
        mix64(self.key_of(user))
    }

    /// One uniform number in [0, 1) for `user`.
    #[inline(always)]
    pub fn uniform(self, user: u32) -> f64 {
        unit_interval(self.bits(user))
    }

    /// A Bernoulli draw: true with probability `p` (exactly never for `p <= 0`,
    /// always for `p >= 1`).
    #[inline(always)]
    pub fn bernoulli(self, user: u32, p: f64) -> bool {
        self.uniform(user) < p
    }

    /// [`bernoulli`](Self::bernoulli) for the first `count` (at most 64) of
    /// `users`, each against its own probability: bit `i` of the result is the
    /// draw of `users[i]` (bits from `count` on are 0). The same outcomes as
    /// `count` calls of `bernoulli`, bit for bit, whichever way `wide` computes
    /// them (for the churn step's renewals).
    #[inline]
    pub fn bernoulli_each(
        self,
        wide: WideDraws,
        users: &[u32; 64],
        probabilities: &[f64; 64],
        count: usize,
    ) -> u64 {
        let count = count.min(64);
        #[cfg(target_arch = "x86_64")]
        if wide.avx512 {
            // SAFETY: `wide.avx512` is set only where the CPU has the features
            // the function is compiled for (`WideDraws::detect`).
            return unsafe { bernoulli_each_avx512(self.0, users, probabilities, count) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = wide;
        (0..count).fold(0, |mask, i| {
            mask | u64::from(self.bernoulli(users[i], probabilities[i])) << i
        })
    }

    /// A Bernoulli draw against a precomputed [`Chance`]: the same outcome as
    /// `bernoulli` up to 2^-53, without a float conversion (for hot loops).
    #[inline(always)]
    pub fn happens(self, user: u32, chance: Chance) -> bool {
        self.bits(user) < chance.0 || chance.0 == u64::MAX
    }

    /// [`happens`](Self::happens) for up to 64 consecutive users at once: bit
    /// `i` of the result is the draw of user `first_user + i`, for the users
    /// whose bit is set in `among` (the others' bits are 0). The same outcomes
    /// as 64 calls of `happens`, bit for bit, whichever way `wide` computes
    /// them.
    #[inline]
    pub fn happens_among(
        self,
        wide: WideDraws,
        first_user: u32,
        among: u64,
        chance: Chance,
    ) -> u64 {
        if chance.0 == u64::MAX {
            return among;
        }
        #[cfg(target_arch = "x86_64")]
        if wide.avx512 && among.count_ones() >= WIDE_FROM {
            // SAFETY: `wide.avx512` is set only where the CPU has the features
            // the function is compiled for (`WideDraws::detect`).
            return among & unsafe { below_threshold_avx512(self.key_of(first_user), chance.0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = wide;
        self.happens_among_one_by_one(first_user, among, chance)
    }

    /// [`happens_among`](Self::happens_among), and which of the other draws
    /// fall within each user's headroom above `chance`, from the same draws:
    /// `(hits, between)` for the users `first_user + i` whose bit `i` is set in
    /// `among` (the others' bits are 0), where `hits` has bit `i` of
    /// `happens(first_user + i, chance)` and `between` bit `i` where that draw
    /// is not a hit but `headrooms[i]` admits it ([`Headroom::admits`]). So a
    /// user whose own probability is at most `headrooms[i]` above `chance` can
    /// only happen where `hits` or `between` is set: the network's step 1 draws
    /// each user once and checks its own probability only in `between`. Bit
    /// for bit the same whichever way `wide` computes it.
    #[inline]
    pub fn happens_among_within(
        self,
        wide: WideDraws,
        first_user: u32,
        among: u64,
        chance: Chance,
        headrooms: &[Headroom; 64],
    ) -> (u64, u64) {
        if chance.0 == u64::MAX {
            return (among, 0);
        }
        #[cfg(target_arch = "x86_64")]
        if wide.avx512 && among.count_ones() >= WIDE_FROM {
            // SAFETY: `wide.avx512` is set only where the CPU has the features
            // the function is compiled for (`WideDraws::detect`).
            let (below, between) =
                unsafe { below_and_between_avx512(self.key_of(first_user), chance.0, headrooms) };
            return (among & below, among & between);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = wide;
        let (mut hits, mut between) = (0, 0);
        let mut left = among;
        while left != 0 {
            let bit = left.trailing_zeros();
            left &= left - 1;
            let user = first_user.wrapping_add(bit);
            hits |= u64::from(self.happens(user, chance)) << bit;
            between |= u64::from(headrooms[bit as usize].admits(self, user, chance)) << bit;
        }
        (hits, between)
    }

    /// [`happens_among`](Self::happens_among) on any CPU: one user at a time.
    #[inline]
    fn happens_among_one_by_one(self, first_user: u32, among: u64, chance: Chance) -> u64 {
        let mut left = among;
        let mut hits = 0;
        while left != 0 {
            let bit = left.trailing_zeros();
            left &= left - 1;
            if self.happens(first_user.wrapping_add(bit), chance) {
                hits |= 1 << bit;
            }
        }
        hits
    }

    /// The first `out.len()` numbers of the generators of the users
    /// `first_user + lanes[j]` for `j < count` (`count <= 64`), drawn together:
    /// `out[0][j]` the user's bits (what [`uniform`](Self::uniform) and
    /// [`happens`](Self::happens) read, and the state
    /// [`generator`](Self::generator) starts from), `out[k][j]` for `k >= 1`
    /// the `k`-th number the user's generator yields ([`DrawRng::resumed`]
    /// continues after them); entries from `count` on may hold anything. With
    /// AVX-512 eight users per instruction, else one by one; the same numbers
    /// either way. For a scan that needs several draws of the exposed users of
    /// a word (`lanes` their places in it): a user's draws are chains of two
    /// dependent hashes, which the pass computes side by side.
    #[inline]
    pub fn generators_of(
        self,
        wide: WideDraws,
        first_user: u32,
        lanes: &[u8; 64],
        count: usize,
        out: &mut [[u64; 64]],
    ) {
        let count = count.min(64);
        #[cfg(target_arch = "x86_64")]
        if wide.avx512 {
            // SAFETY: `wide.avx512` is set only where the CPU has the features
            // the function is compiled for (`WideDraws::detect`).
            unsafe { generators_avx512(self.key_of(first_user), lanes, count, out) };
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = wide;
        for (j, &lane) in lanes[..count].iter().enumerate() {
            let user = first_user.wrapping_add(u32::from(lane));
            let mut generator = self.generator(user);
            for (k, row) in out.iter_mut().enumerate() {
                row[j] = if k == 0 {
                    generator.state
                } else {
                    generator.next()
                };
            }
        }
    }

    /// What `bits` hashes for `user`.
    #[inline(always)]
    fn key_of(self, user: u32) -> u64 {
        self.0
            .wrapping_add((u64::from(user) + 1).wrapping_mul(GOLDEN_GAMMA))
    }

    /// A generator for draws that need several numbers (a normal, a Beta, a
    /// categorical choice), usable with `rand_distr` distributions.
    #[inline]
    pub fn generator(self, user: u32) -> DrawRng {
        DrawRng {
            state: self.bits(user),
        }
    }
}

/// From how many users of a word on [`EventStream::happens_among`] computes all
/// 64 draws at once where it can: for fewer (a word's registered users, say)
/// drawing them one by one is cheaper.
const WIDE_FROM: u32 = 8;

/// How this CPU draws 64 users at once in [`EventStream::happens_among`]:
/// eight hashes per instruction with AVX-512, else one by one. Detected once
/// (per day of a replication), not in the hot loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideDraws {
    avx512: bool,
}

impl WideDraws {
    /// The fastest way this CPU has, unless the environment variable
    /// `BRANDSIM_PORTABLE` is set to `1`: then the portable path, one user at
    /// a time, as on a CPU without AVX-512 (to measure that path on any
    /// machine; the draws are the same either way). Read once per process.
    pub fn detect() -> Self {
        static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let avx512 = *DETECTED.get_or_init(|| {
            if std::env::var_os("BRANDSIM_PORTABLE").is_some_and(|v| v == "1") {
                return false;
            }
            #[cfg(target_arch = "x86_64")]
            let avx512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq");
            #[cfg(not(target_arch = "x86_64"))]
            let avx512 = false;
            avx512
        });
        WideDraws { avx512 }
    }

    /// Whether 64 draws are computed eight per instruction (AVX-512).
    pub fn is_wide(self) -> bool {
        self.avx512
    }

    /// One user at a time, on any CPU.
    pub fn one_by_one() -> Self {
        WideDraws { avx512: false }
    }
}

/// A probability as a threshold on 64 random bits: `p·2^64`, with `p >= 1`
/// always true and `p <= 0` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chance(u64);

impl Chance {
    pub fn new(p: f64) -> Self {
        if p >= 1.0 {
            Chance(u64::MAX)
        } else if p > 0.0 {
            // Below 1, p·2^64 < 2^64; the cast saturates and truncates.
            Chance((p * 18_446_744_073_709_551_616.0) as u64)
        } else {
            Chance(0)
        }
    }

    /// The chance whose threshold on 64 random bits is `threshold`
    /// (`u64::MAX`: always).
    pub const fn from_threshold(threshold: u64) -> Self {
        Chance(threshold)
    }

    /// The threshold `p·2^64` (truncated; `u64::MAX` for always).
    pub const fn threshold(self) -> u64 {
        self.0
    }
}

/// How far above a [`Chance`] another probability may lie, rounded up to a
/// multiple of 2^-16: `h` admits the draws at or above the chance's threshold
/// `T` with `(draw − T) < (h + 1)·2^48` ([`Headroom::admits`]); `u16::MAX`
/// admits every draw at or above `T`. Two bytes per user, so a 64-lane pass
/// ([`EventStream::happens_among_within`]) reads 128 bytes of them and spends
/// a subtraction, a shift and a compare per lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Headroom(u16);

impl Headroom {
    /// Admits no draw at or above the threshold but those less than 2^-16
    /// above it.
    pub const NONE: Headroom = Headroom(0);

    /// The headroom of a probability `p_u` with `p_u·2^64 <= T + width·2^64 +
    /// 2^47`, where `T` is the threshold of the chance it is measured from:
    /// `h = ⌈width·2^16⌉` (capped at `u16::MAX`, which admits every draw, and
    /// so does a NaN `width`), so `(h + 1)·2^48 >= width·2^64 + 2^48`, and a
    /// draw below `p_u`'s threshold is admitted. `width >= 0`.
    #[inline]
    pub fn at_least(width: f64) -> Headroom {
        let scaled = width * 65_536.0;
        if scaled < 65_534.0 {
            // 0 <= scaled < 65534 (or negative: 0); the rounding up by hand,
            // since `f64::ceil` is a call without SSE4.1.
            let floor = scaled.max(0.0) as u16;
            Headroom(floor + u16::from(f64::from(floor) < scaled))
        } else {
            Headroom(u16::MAX)
        }
    }

    /// A chance at most `p' = 1 − (1 − p)e^{−x}` for `chance` `p` and every
    /// `x` this headroom may have been made from: `p` raised by the extra
    /// hazard `x` (MODEL.md v2, step 1 with a network), in integers.
    ///
    /// [`at_least`](Self::at_least) rounds up by less than 2^-16 (or caps
    /// above `1 − 2^-15`), so `x >= x_lo = (h − 1)·2^-16 < 1` (0 for `h = 0`),
    /// and `1 − e^{−x} >= x_lo − x_lo²/2 >= b·2^-16` with `b = (h − 1) −
    /// ⌈(h − 1)²/2^17⌉`. The threshold is `T − 2^24 + c·b·2^16` with `T`
    /// `chance`'s threshold and `c = ⌊(2^64 − 1 − T)/2^32⌋ <= (1 − p)·2^32`:
    /// at most `p + (1 − p)·b·2^-16` less 2^-40, which covers the rounding of
    /// `p` and of the computed `p'` (far below 2^-40); and never below `T`.
    /// `chance` itself where `T < 2^24`. No overflow: `c·b·2^16 < (1 − p)·2^63`.
    #[inline]
    pub fn lower_chance(self, chance: Chance) -> Chance {
        const MARGIN: u64 = 1 << 24;
        let threshold = chance.0;
        if threshold < MARGIN || threshold == u64::MAX {
            return chance;
        }
        let steps = u64::from(self.0.min(u16::MAX - 1).saturating_sub(1));
        let below = steps - (steps * steps).div_ceil(1 << 17);
        let complement = (u64::MAX - threshold) >> 32;
        Chance((threshold - MARGIN + ((complement * below) << 16)).max(threshold))
    }

    /// Whether `user`'s draw of `stream` is at or above `chance` (never, for
    /// a chance that is always) and within this headroom of it.
    #[inline]
    pub fn admits(self, stream: EventStream, user: u32, chance: Chance) -> bool {
        let bits = stream.bits(user);
        bits >= chance.0 && chance.0 != u64::MAX && self.admits_above(bits, chance.0)
    }

    /// `(bits − threshold) mod 2^64 < (h + 1)·2^48`: for `bits >= threshold`
    /// whether this headroom admits them.
    #[inline(always)]
    fn admits_above(self, bits: u64, threshold: u64) -> bool {
        bits.wrapping_sub(threshold) >> 48 <= u64::from(self.0)
    }
}

/// A SplitMix64 sequence started from one user's key.
#[derive(Debug, Clone)]
pub struct DrawRng {
    state: u64,
}

impl DrawRng {
    /// The generator of a user whose bits are `bits` (its start state,
    /// [`EventStream::generators_of`]'s `out[0]`) after it has yielded
    /// `taken` numbers.
    #[inline]
    pub fn resumed(bits: u64, taken: u64) -> Self {
        DrawRng {
            state: bits.wrapping_add(taken.wrapping_mul(GOLDEN_GAMMA)),
        }
    }

    #[inline]
    pub fn uniform(&mut self) -> f64 {
        unit_interval(self.next())
    }

    /// A uniform number in the open interval (0, 1): the top 53 bits and a
    /// half, so its logarithm is always finite.
    #[inline]
    pub fn open_uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// This generator after `taken` more numbers, without drawing them (a
    /// SplitMix64 state moves by a constant per number).
    #[inline]
    pub fn skipped(&self, taken: u64) -> DrawRng {
        DrawRng::resumed(self.state, taken)
    }
}

/// `rand`'s `TryRng` for a generator of 64-bit numbers with an inherent
/// `next`: 32 bits are the top half of a number, bytes come 8 to a number.
macro_rules! try_rng_from_next {
    ($generator:ty) => {
        impl TryRng for $generator {
            type Error = Infallible;

            #[inline]
            fn try_next_u32(&mut self) -> Result<u32, Infallible> {
                Ok((self.next() >> 32) as u32)
            }

            #[inline]
            fn try_next_u64(&mut self) -> Result<u64, Infallible> {
                Ok(self.next())
            }

            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
                for chunk in dst.chunks_mut(8) {
                    let bytes = self.next().to_le_bytes();
                    chunk.copy_from_slice(&bytes[..chunk.len()]);
                }
                Ok(())
            }
        }
    };
}

try_rng_from_next!(DrawRng);

/// A user's generator whose first number was drawn ahead
/// ([`EventStream::generators_of`]): yields it, then continues the
/// generator, so a distribution samples exactly what it would from
/// [`EventStream::generator`].
#[derive(Debug, Clone)]
pub struct AheadRng {
    first: Option<u64>,
    rest: DrawRng,
}

impl AheadRng {
    /// From the user's bits (`out[0][i]`) and its generator's first number
    /// (`out[1][i]`).
    #[inline]
    pub fn new(bits: u64, first: u64) -> Self {
        AheadRng {
            first: Some(first),
            rest: DrawRng::resumed(bits, 1),
        }
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.first.take().unwrap_or_else(|| self.rest.next())
    }
}

try_rng_from_next!(AheadRng);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_draws_at_once_are_the_draws_one_by_one() {
        let chances = [0.0, 1e-12, 0.003, 0.5, 0.999_999, 1.0].map(Chance::new);
        let mut masks = ReplicationKey::new(5, 0)
            .stream(0, Event::Topic)
            .generator(0);
        for (k, first_user) in [0, 1, 63, 1000, 123_456_789, u32::MAX - 63]
            .into_iter()
            .enumerate()
        {
            let stream = ReplicationKey::new(k as u64, 2).stream(9, Event::Exposure);
            for chance in chances {
                for among in [
                    u64::MAX,
                    0,
                    1 << 63,
                    0x7f << 3,
                    0xff << 9,
                    masks.next(),
                    masks.next(),
                ] {
                    let expected = (0..64)
                        .filter(|&i| among >> i & 1 == 1 && stream.happens(first_user + i, chance))
                        .fold(0u64, |mask, i| mask | 1 << i);
                    for wide in [WideDraws::detect(), WideDraws::one_by_one()] {
                        assert_eq!(
                            stream.happens_among(wide, first_user, among, chance),
                            expected
                        );
                    }
                }
            }
        }
    }

    /// `bernoulli_each` against `bernoulli` user by user: any users (also
    /// the largest number), probabilities at the edges (0, the smallest
    /// positive, exactly a uniform number's value, 1, NaN) and in between, and
    /// every count from 0 to 64.
    #[test]
    fn bernoulli_each_is_bernoulli_user_by_user() {
        let mut numbers = ReplicationKey::new(3, 4)
            .stream(1, Event::Topic)
            .generator(0);
        let stream = ReplicationKey::new(11, 5).stream(7, Event::Churn);
        for round in 0..200 {
            let users: [u32; 64] = std::array::from_fn(|i| match (i + round) % 7 {
                0 => u32::MAX,
                1 => i as u32,
                _ => (numbers.next() >> 32) as u32,
            });
            let probabilities: [f64; 64] = std::array::from_fn(|i| match (i + round) % 9 {
                0 => 0.0,
                1 => f64::MIN_POSITIVE,
                2 => 1.0,
                3 => f64::NAN,
                // A draw's own uniform number: the comparison is strict.
                4 => stream.uniform(users[i]),
                5 => numbers.uniform() * 1e-3,
                _ => numbers.uniform(),
            });
            let count = round % 65;
            let expected = (0..count).fold(0u64, |mask, i| {
                mask | u64::from(stream.bernoulli(users[i], probabilities[i])) << i
            });
            for wide in [WideDraws::detect(), WideDraws::one_by_one()] {
                assert_eq!(
                    stream.bernoulli_each(wide, &users, &probabilities, count),
                    expected,
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn draws_within_headrooms_are_the_draws_one_by_one() {
        let mut numbers = ReplicationKey::new(8, 1)
            .stream(0, Event::Topic)
            .generator(0);
        for first_user in [0, 64, 1000, u32::MAX - 63] {
            let stream = ReplicationKey::new(6, 3).stream(2, Event::Exposure);
            for round in 0..20 {
                let chance = match round % 4 {
                    0 => Chance::new(0.0),
                    1 => Chance::new(1.0),
                    _ => Chance::new(numbers.uniform() * 0.5),
                };
                let headrooms: [Headroom; 64] = std::array::from_fn(|i| match (i + round) % 5 {
                    0 => Headroom::NONE,
                    1 => Headroom(u16::MAX),
                    2 => Headroom::at_least(0.9999),
                    _ => Headroom::at_least(numbers.uniform() * 0.3),
                });
                for among in [u64::MAX, 0, 0xff << 9, numbers.next(), numbers.next()] {
                    let (mut hits, mut between) = (0u64, 0u64);
                    for i in (0..64).filter(|&i| among >> i & 1 == 1) {
                        let user = first_user + i;
                        let hit = stream.happens(user, chance);
                        hits |= u64::from(hit) << i;
                        // The headroom's bound, exactly, in 128 bits.
                        let room = (u128::from(headrooms[i as usize].0) + 1) << 48;
                        let bits = u128::from(stream.bits(user));
                        let threshold = u128::from(chance.threshold());
                        let admitted =
                            chance.threshold() != u64::MAX && !hit && bits < threshold + room;
                        between |= u64::from(admitted) << i;
                    }
                    for wide in [WideDraws::detect(), WideDraws::one_by_one()] {
                        assert_eq!(
                            stream
                                .happens_among_within(wide, first_user, among, chance, &headrooms),
                            (hits, between),
                            "first user {first_user}, round {round}, among {among:x}"
                        );
                    }
                }
            }
        }
    }

    /// `Headroom::at_least(w)` admits every draw below `T + w·2^64 + 2^47`,
    /// admits little more, saturates at every draw, and its floor is below
    /// `w` by less than 2^-15.
    #[test]
    fn a_headroom_covers_its_width_and_little_more() {
        let two_64 = 18_446_744_073_709_551_616.0_f64;
        let unit = 2f64.powi(-16);
        for width in [
            0.0,
            1e-300,
            1e-9,
            2e-5,
            unit,
            3.0 * unit,
            0.3,
            0.99996,
            0.99998,
            1.0,
            7.0,
            f64::NAN,
        ] {
            let h = Headroom::at_least(width);
            let room = (u128::from(h.0) + 1) << 48;
            if width * 65_536.0 < 65_534.0 {
                assert!(room as f64 >= width * two_64 + 2f64.powi(47), "{width}");
                assert!(
                    (room as f64) <= width * two_64 + 2.0 * 2f64.powi(48),
                    "{width}"
                );
                // `p' = 1 − (1 − p)e^{−x}` at p = 0.2 (to within 1e-15).
                let chance = Chance::new(0.2);
                let lower = h.lower_chance(chance).threshold() as f64 / two_64;
                let raised = 1.0 - 0.8 * (-width).exp();
                assert!(lower <= raised + 1e-15, "{width}");
                let target = 0.2 + 0.8 * (width - width * width / 2.0);
                assert!(lower >= target - 2.0 * unit, "{width}");
            } else {
                assert_eq!(h, Headroom(u16::MAX), "{width}");
                assert!(h.admits_above(u64::MAX, 0), "{width}");
                let chance = Chance::new(0.2);
                let lower = h.lower_chance(chance).threshold() as f64 / two_64;
                assert!(
                    width.is_nan() || lower <= 1.0 - 0.8 * (-width).exp() + 1e-15,
                    "{width}"
                );
            }
        }
    }

    /// The numbers drawn ahead for 64 users are their generators' numbers on
    /// both paths, and a distribution sampled from `AheadRng` draws what it
    /// draws from the generator (a normal, whose ziggurat sometimes takes
    /// more than one number).
    #[test]
    fn numbers_drawn_ahead_are_the_generators_numbers() {
        use rand_distr::{Distribution, StandardNormal};
        let all: [u8; 64] = std::array::from_fn(|i| i as u8);
        let some: [u8; 64] = std::array::from_fn(|i| (i * 7 % 64) as u8);
        for first_user in [0, 64, 1000, u32::MAX - 63] {
            let stream = ReplicationKey::new(4, 2).stream(7, Event::ItemChoice);
            for wide in [WideDraws::detect(), WideDraws::one_by_one()] {
                for (lanes, count) in [(&all, 64), (&some, 64), (&some, 13), (&some, 1), (&all, 0)]
                {
                    let mut out = [[0u64; 64]; 3];
                    stream.generators_of(wide, first_user, lanes, count, &mut out);
                    for (j, &lane) in lanes[..count].iter().enumerate() {
                        let user = first_user.wrapping_add(u32::from(lane));
                        assert_eq!(out[0][j], stream.bits(user));
                        let mut generator = stream.generator(user);
                        assert_eq!(out[1][j], generator.next());
                        assert_eq!(out[2][j], generator.next());
                        let mut resumed = DrawRng::resumed(out[0][j], 2);
                        assert_eq!(resumed.next(), generator.next());
                    }
                }
            }
        }
        let stream = ReplicationKey::new(9, 0).stream(INITIAL_DAY, Event::Propensity);
        let mut out = [[0u64; 64]; 2];
        for first_user in (0..20_000).step_by(64) {
            stream.generators_of(WideDraws::detect(), first_user, &all, 64, &mut out);
            for (i, (&bits, &first)) in out[0].iter().zip(&out[1]).enumerate() {
                let user = first_user + i as u32;
                let expected: f64 = StandardNormal.sample(&mut stream.generator(user));
                let ahead: f64 = StandardNormal.sample(&mut AheadRng::new(bits, first));
                assert_eq!(ahead.to_bits(), expected.to_bits(), "user {user}");
            }
        }
    }

    #[test]
    fn a_draw_depends_only_on_its_key() {
        let a = ReplicationKey::new(42, 3).stream(10, Event::Click);
        let b = ReplicationKey::new(42, 3).stream(10, Event::Click);
        assert_eq!(a.uniform(7), b.uniform(7));
        assert_ne!(a.uniform(7), a.uniform(8));
        let other_event = ReplicationKey::new(42, 3).stream(10, Event::Conversion);
        let other_day = ReplicationKey::new(42, 3).stream(11, Event::Click);
        let other_rep = ReplicationKey::new(42, 4).stream(10, Event::Click);
        let other_seed = ReplicationKey::new(43, 3).stream(10, Event::Click);
        for other in [other_event, other_day, other_rep, other_seed] {
            assert_ne!(a.uniform(7), other.uniform(7));
        }
    }

    #[test]
    fn uniforms_have_the_moments_of_u01_and_no_lag_correlation() {
        let stream = ReplicationKey::new(1, 0).stream(0, Event::Exposure);
        let n = 1_000_000u32;
        let (mut sum, mut sum_sq, mut lag) = (0.0, 0.0, 0.0);
        let mut previous = stream.uniform(0);
        for user in 0..n {
            let x = stream.uniform(user);
            sum += x;
            sum_sq += x * x;
            lag += (x - 0.5) * (previous - 0.5);
            previous = x;
        }
        let n = n as f64;
        // Standard errors: mean 0.2887/sqrt(n), E[x^2] 0.2981/sqrt(n), lag 0.0833/sqrt(n).
        assert!((sum / n - 0.5).abs() < 5.0 * 0.2887 / n.sqrt());
        assert!((sum_sq / n - 1.0 / 3.0).abs() < 5.0 * 0.2981 / n.sqrt());
        assert!((lag / n).abs() < 5.0 * 0.0833 / n.sqrt());
    }

    #[test]
    fn chances_match_bernoulli_draws() {
        let stream = ReplicationKey::new(9, 2).stream(4, Event::Exposure);
        for p in [0.0, 1e-3, 0.25, 0.5, 0.9, 1.0] {
            let chance = Chance::new(p);
            let agree = (0..100_000)
                .filter(|&u| stream.happens(u, chance) == stream.bernoulli(u, p))
                .count();
            assert_eq!(agree, 100_000, "p = {p}");
        }
    }

    #[test]
    fn bernoulli_is_exact_at_zero_and_one() {
        let stream = ReplicationKey::new(5, 1).stream(2, Event::Dormancy);
        assert!((0..10_000).all(|u| !stream.bernoulli(u, 0.0)));
        assert!((0..10_000).all(|u| stream.bernoulli(u, 1.0)));
    }
}
