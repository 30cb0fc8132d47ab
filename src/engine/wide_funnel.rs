//! Steps 2–3 of a word's exposed users side by side (MODEL.md, "The funnel"):
//! the favourite topic, the item and the click decision of 64 users in one
//! pass of eight lanes per instruction, where the CPU has AVX-512 and the
//! catalogue's tables are small. The same arithmetic as the one-by-one path
//! (`TopicPicker::pick`, `Catalogue::choose_item`, [`model::clicks`]), lane by
//! lane, so the same items and clicks; a click the bounds of `model::clicks`
//! leave undecided is left to the one-by-one path.

use super::resources::{Catalogue, SMALL};
use crate::model;
use crate::rng::unit_interval;

/// Up to how many item pickers (one per topic, and one of all items) and
/// items the tables hold.
const PICKERS: usize = 16;
const ITEMS: usize = 16;

/// The catalogue's small tables laid out for the 64-lane pass: a picker's
/// entries are looked up by a permutation across 16 pickers (the `k`-th
/// cumulative promotion of every picker side by side, and so the items).
/// `None` from [`WideTables::of`] where a table is too large (then the
/// one-by-one path).
#[derive(Debug, Clone)]
pub struct WideTables {
    /// Per segment: the running totals of its topic weights (NaN-padded),
    /// the topics they choose (`u64` lanes), the index of the last.
    topics: Vec<([f64; SMALL], [u64; SMALL], u64)>,
    /// `cumulative[k][p]`: picker `p`'s `k`-th cumulative promotion (NaN past
    /// its items). Picker `p < topics` is topic `p`'s, then all items'.
    cumulative: [[f64; PICKERS]; SMALL],
    total: [f64; PICKERS],
    last: [u64; PICKERS],
    /// The most items of any picker: `cumulative[k]` for `k` from it on is
    /// NaN for every picker, never at most a target.
    widest: usize,
    /// `items[SMALL·p + k]`: picker `p`'s `k`-th item.
    items: [u64; PICKERS * SMALL],
    /// `items_at[k][p]`: picker `p`'s `k`-th item, its last item for `k` past
    /// it (so the count of cumulative promotions at most the target indexes
    /// it directly).
    items_at: [[u64; PICKERS]; SMALL + 1],
    /// Per topic, the picker an item of that topic is chosen with: its own, or
    /// all items' where it has none (as `choose_item`).
    own: [u64; PICKERS],
    all: u64,
    /// Per item, [`model::click_factor`] (NaN where there is none).
    click_factor: [f64; ITEMS],
}

/// What the pass decided for the 64 lanes of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideSteps {
    /// The item each lane is shown.
    pub items: [u16; 64],
    /// Lanes whose click the bounds decided, and of those, who clicks.
    pub decided: u64,
    pub clicks: u64,
}

/// The inputs of one word's pass: the bits behind the uniforms of
/// `ExposureDraws` (`topic`, `branch`, `pick`, `click`) and each user's
/// `ε_u` (lanes nobody reads may hold anything).
#[derive(Debug, Clone, Copy)]
pub struct WordInputs<'a> {
    pub topic: &'a [u64; 64],
    pub branch: &'a [u64; 64],
    pub pick: &'a [u64; 64],
    pub propensity: &'a [f64; 64],
    pub click: &'a [u64; 64],
}

impl WideTables {
    /// The tables of `catalogue`, if every picker has at most [`SMALL`]
    /// entries, there are fewer than [`PICKERS`] topics and at most
    /// [`ITEMS`] items.
    pub fn of(catalogue: &Catalogue) -> Option<WideTables> {
        let topics = catalogue.by_topic.len();
        let items = catalogue.click_factor.len();
        if topics + 1 > PICKERS || items > ITEMS {
            return None;
        }
        let mut tables = WideTables {
            topics: Vec::with_capacity(catalogue.topics.len()),
            cumulative: [[f64::NAN; PICKERS]; SMALL],
            total: [f64::NAN; PICKERS],
            last: [0; PICKERS],
            widest: 0,
            items: [0; PICKERS * SMALL],
            items_at: [[0; PICKERS]; SMALL + 1],
            own: [topics as u64; PICKERS],
            all: topics as u64,
            click_factor: [f64::NAN; ITEMS],
        };
        for picker in &catalogue.topics {
            let (cumulative, values, last) = picker.small_parts()?;
            let ids = values.map(|topic| topic as u64);
            tables.topics.push((*cumulative, ids, last as u64));
        }
        for (p, picker) in catalogue
            .by_topic
            .iter()
            .chain(std::iter::once(&catalogue.all))
            .enumerate()
        {
            if picker.is_empty() {
                // A topic without items picks from all; all items' picker
                // empty means nobody is exposed.
                if p == topics {
                    return None;
                }
                continue;
            }
            let (cumulative, total, values, last) = picker.small_parts()?;
            for k in 0..SMALL {
                tables.cumulative[k][p] = cumulative[k];
                tables.items[SMALL * p + k] = u64::from(values[k]);
            }
            for (k, row) in tables.items_at.iter_mut().enumerate() {
                row[p] = u64::from(values[k.min(last)]);
            }
            tables.total[p] = total;
            tables.last[p] = last as u64;
            tables.widest = tables.widest.max(last + 1);
            if p < topics {
                tables.own[p] = p as u64;
            }
        }
        tables.click_factor[..items].copy_from_slice(&catalogue.click_factor);
        Some(tables)
    }

    /// Steps 2–3 of the users in lanes `0..count` (`count <= 64`) of segment
    /// `segment`, with topic match `m`: eight lanes per instruction where
    /// `avx512` (from [`crate::rng::WideDraws::is_wide`]), else one lane at a
    /// time; the same results in those lanes (the others may hold anything).
    pub fn steps(
        &self,
        avx512: bool,
        segment: usize,
        m: f64,
        inputs: &WordInputs,
        count: usize,
    ) -> WideSteps {
        let groups = count.min(64).div_ceil(8);
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            // SAFETY: `avx512` is `WideDraws::is_wide()`, set only where the
            // CPU has the features the function is compiled for.
            return unsafe { self.steps_avx512(segment, m, inputs, groups) };
        }
        let _ = avx512;
        self.steps_one_by_one(segment, m, inputs, groups)
    }

    /// One lane: `(item, decided, clicks)`, as `respond` computes them.
    fn lane(&self, segment: usize, m: f64, inputs: &WordInputs, i: usize) -> (u16, bool, bool) {
        let count_at_most = |values: [f64; SMALL], target: f64, last: u64| {
            (values.iter().filter(|&&c| c <= target).count() as u64).min(last) as usize
        };
        let (topic_totals, topic_ids, topic_last) = &self.topics[segment];
        let at = count_at_most(*topic_totals, unit_interval(inputs.topic[i]), *topic_last);
        let topic = topic_ids[at] as usize;
        let own = self.own[topic];
        let picker = if unit_interval(inputs.branch[i]) < m {
            own
        } else {
            self.all
        } as usize;
        let target = unit_interval(inputs.pick[i]) * self.total[picker];
        let entries = std::array::from_fn(|k| self.cumulative[k][picker]);
        let at = count_at_most(entries, target, self.last[picker]);
        let item = self.items[SMALL * picker + at] as u16;
        let propensity = inputs.propensity[i];
        let factor = self.click_factor[usize::from(item)];
        let w = unit_interval(inputs.click[i]) * (1.0 + factor * model::exp_bounded(-propensity));
        let below = w < 1.0 - model::CLICK_DECISION_MARGIN;
        let above = w > 1.0 + model::CLICK_DECISION_MARGIN;
        let decided = (below | above) & (propensity.abs() <= model::EXP_BOUNDED_LIMIT);
        (item, decided, below)
    }

    /// The pass one lane at a time, over the first `groups` groups of 8.
    fn steps_one_by_one(
        &self,
        segment: usize,
        m: f64,
        inputs: &WordInputs,
        groups: usize,
    ) -> WideSteps {
        let mut steps = WideSteps {
            items: [0; 64],
            decided: 0,
            clicks: 0,
        };
        for i in 0..8 * groups {
            let (item, decided, clicks) = self.lane(segment, m, inputs, i);
            steps.items[i] = item;
            steps.decided |= u64::from(decided) << i;
            steps.clicks |= u64::from(clicks) << i;
        }
        steps
    }

    /// The pass eight lanes per instruction: [`Self::lane`]'s operations in
    /// the same order on `f64` lanes (no fused multiply-adds), the tables
    /// looked up by permutations across the 16 pickers or items.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn steps_avx512(
        &self,
        segment: usize,
        m: f64,
        inputs: &WordInputs,
        groups: usize,
    ) -> WideSteps {
        use std::arch::x86_64::*;
        // Eight lanes: the compiler makes each of these one load.
        let pd = |a: &[f64]| _mm512_setr_pd(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        // `as i64`: the same 64 bits.
        let epi64 = |a: &[u64]| {
            _mm512_setr_epi64(
                a[0] as i64,
                a[1] as i64,
                a[2] as i64,
                a[3] as i64,
                a[4] as i64,
                a[5] as i64,
                a[6] as i64,
                a[7] as i64,
            )
        };
        // A table of 16 as two vectors, for `permutex2var`.
        let pair_pd = |table: &[f64; 16]| (pd(&table[..8]), pd(&table[8..]));
        let pair_epi64 = |table: &[u64; 16]| (epi64(&table[..8]), epi64(&table[8..]));
        let splat = _mm512_set1_pd;
        // `unit_interval`.
        let unit = |bits: __m512i| {
            _mm512_mul_pd(
                _mm512_cvtepu64_pd(_mm512_srli_epi64::<11>(bits)),
                splat(1.0 / (1u64 << 53) as f64),
            )
        };
        // `model::exp_bounded`, the same operations in the same order.
        let exp_bounded = |y: __m512d| {
            const ROUND: f64 = 6_755_399_441_055_744.0;
            let round = splat(ROUND);
            let k = _mm512_sub_pd(
                _mm512_add_pd(_mm512_mul_pd(y, splat(std::f64::consts::LOG2_E)), round),
                round,
            );
            let r = _mm512_sub_pd(y, _mm512_mul_pd(k, splat(std::f64::consts::LN_2)));
            let r2 = _mm512_mul_pd(r, r);
            let r4 = _mm512_mul_pd(r2, r2);
            let low = _mm512_add_pd(
                _mm512_add_pd(splat(1.0), r),
                _mm512_mul_pd(
                    r2,
                    _mm512_add_pd(splat(0.5), _mm512_mul_pd(r, splat(1.0 / 6.0))),
                ),
            );
            let high = _mm512_add_pd(splat(1.0 / 24.0), _mm512_mul_pd(r, splat(1.0 / 120.0)));
            let polynomial = _mm512_add_pd(low, _mm512_mul_pd(r4, high));
            let exponent = _mm512_add_epi64(_mm512_cvttpd_epi64(k), _mm512_set1_epi64(1023));
            _mm512_mul_pd(
                polynomial,
                _mm512_castsi512_pd(_mm512_slli_epi64::<52>(exponent)),
            )
        };
        let (topic_totals, topic_ids, topic_last) = &self.topics[segment];
        let topic_last_index = topic_last;
        let topic_ids = epi64(topic_ids);
        let topic_last = _mm512_set1_epi64(*topic_last as i64);
        let (own_low, own_high) = pair_epi64(&self.own);
        let all = _mm512_set1_epi64(self.all as i64);
        let (total_low, total_high) = pair_pd(&self.total);
        let (factor_low, factor_high) = pair_pd(&self.click_factor);
        let one_epi64 = _mm512_set1_epi64(1);
        let m = splat(m);
        let (one, sign) = (splat(1.0), splat(-0.0));
        let lower = splat(1.0 - model::CLICK_DECISION_MARGIN);
        let upper = splat(1.0 + model::CLICK_DECISION_MARGIN);
        let limit = splat(model::EXP_BOUNDED_LIMIT);
        let mut items = [0u16; 64];
        let (mut decided, mut clicks) = ([0u8; 8], [0u8; 8]);
        for group in 0..groups {
            let lanes = 8 * group..8 * group + 8;
            // Step 2: the favourite topic, `TopicPicker::pick`.
            let u = unit(epi64(&inputs.topic[lanes.clone()]));
            let mut at = _mm512_setzero_si512();
            // Only the segment's topics: the NaN padding never counts.
            for &total in &topic_totals[..=*topic_last_index as usize] {
                let below = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(splat(total), u);
                at = _mm512_mask_add_epi64(at, below, at, one_epi64);
            }
            let topic = _mm512_permutexvar_epi64(_mm512_min_epu64(at, topic_last), topic_ids);
            // `choose_item`: the topic's own picker where `branch < m`, then
            // the item after the cumulative promotions at most the target.
            let own = _mm512_permutex2var_epi64(own_low, topic, own_high);
            let branch = unit(epi64(&inputs.branch[lanes.clone()]));
            let picker =
                _mm512_mask_blend_epi64(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(branch, m), all, own);
            let target = _mm512_mul_pd(
                unit(epi64(&inputs.pick[lanes.clone()])),
                _mm512_permutex2var_pd(total_low, picker, total_high),
            );
            let (first_low, first_high) = pair_epi64(&self.items_at[0]);
            let mut item = _mm512_permutex2var_epi64(first_low, picker, first_high);
            // Only as far as the widest picker: NaN beyond, never counted.
            for k in 0..self.widest {
                let (low, high) = pair_pd(&self.cumulative[k]);
                let entry = _mm512_permutex2var_pd(low, picker, high);
                let below = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(entry, target);
                let (next_low, next_high) = pair_epi64(&self.items_at[k + 1]);
                let next = _mm512_permutex2var_epi64(next_low, picker, next_high);
                item = _mm512_mask_blend_epi64(below, item, next);
            }
            // Step 3's decision, `model::clicks`.
            let factor = _mm512_permutex2var_pd(factor_low, item, factor_high);
            let propensity = pd(&inputs.propensity[lanes.clone()]);
            let e = exp_bounded(_mm512_xor_pd(propensity, sign));
            let w = _mm512_mul_pd(
                unit(epi64(&inputs.click[lanes.clone()])),
                _mm512_add_pd(one, _mm512_mul_pd(factor, e)),
            );
            let below = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(w, lower);
            let above = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(w, upper);
            let within =
                _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_andnot_pd(sign, propensity), limit);
            decided[group] = (below | above) & within;
            clicks[group] = below;
            // SAFETY: `__m128i` and `[u16; 8]` are 16 bytes, and every bit
            // pattern is a valid `[u16; 8]`.
            let eight: [u16; 8] = unsafe { std::mem::transmute(_mm512_cvtepi64_epi16(item)) };
            items[lanes].copy_from_slice(&eight);
        }
        WideSteps {
            items,
            decided: u64::from_le_bytes(decided),
            clicks: u64::from_le_bytes(clicks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Event, ReplicationKey, WideDraws};

    /// Both passes decide every lane as the one-by-one path of the funnel
    /// does: the topic picker, `choose_item` and `model::clicks` (where the
    /// pass decides), on scenarios with one and with several topics, topic
    /// match 0, between and 1, items without a click factor, propensities
    /// beyond `exp_bounded`'s range.
    #[test]
    fn the_pass_decides_as_the_funnel_does() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/busy_market.toml"),
        )
        .unwrap();
        let scenario = crate::scenario::parse_str(&text, "busy_market.toml").unwrap();
        let mut numbers = ReplicationKey::new(2, 0)
            .stream(0, Event::Topic)
            .generator(0);
        for (round, m) in [0.0, 0.75, 1.0, 0.3].into_iter().enumerate() {
            let mut scenario = scenario.clone();
            scenario.brand.topic_match = m;
            if round == 3 {
                // An item clicked always: no factor.
                scenario.content[1].click_rate = 1.0;
            }
            let catalogue = Catalogue::new(&scenario);
            let tables = catalogue.wide.as_ref().expect("small tables");
            for segment in 0..scenario.market.segments.len() {
                let data = &scenario.market.segments[segment];
                for _ in 0..200 {
                    let bits = |numbers: &mut crate::rng::DrawRng| {
                        std::array::from_fn(|_| rand::Rng::next_u64(numbers))
                    };
                    let (topic, branch, pick, click): ([u64; 64], [u64; 64], [u64; 64], [u64; 64]) = (
                        bits(&mut numbers),
                        bits(&mut numbers),
                        bits(&mut numbers),
                        bits(&mut numbers),
                    );
                    let propensity: [f64; 64] = std::array::from_fn(|i| {
                        (numbers.uniform() - 0.5) * [2.0, 8.0, 70.0][i % 3]
                    });
                    let inputs = WordInputs {
                        topic: &topic,
                        branch: &branch,
                        pick: &pick,
                        propensity: &propensity,
                        click: &click,
                    };
                    let wide = tables.steps(WideDraws::detect().is_wide(), segment, m, &inputs, 64);
                    assert_eq!(wide, tables.steps(false, segment, m, &inputs, 64));
                    // Fewer lanes: the same in those (groups of 8).
                    let few = tables.steps(WideDraws::detect().is_wide(), segment, m, &inputs, 13);
                    assert_eq!(few.items[..16], wide.items[..16]);
                    assert_eq!(
                        (few.decided & 0xffff, few.clicks & 0xffff),
                        (wide.decided & 0xffff, wide.clicks & 0xffff)
                    );
                    for i in 0..64 {
                        let topic = catalogue.topics[segment].pick(data, unit_interval(topic[i]));
                        let item = catalogue.choose_item(
                            topic,
                            m,
                            unit_interval(branch[i]),
                            unit_interval(pick[i]),
                        );
                        assert_eq!(wide.items[i], item);
                        let j = usize::from(item);
                        let clicks = model::clicks(
                            unit_interval(click[i]),
                            catalogue.click_logit[j],
                            scenario.brand.click_effect,
                            scenario.brand.value,
                            propensity[i],
                            catalogue.click_factor[j],
                        );
                        if wide.decided >> i & 1 == 1 {
                            assert_eq!(wide.clicks >> i & 1 == 1, clicks, "lane {i}");
                        }
                    }
                }
            }
        }
    }
}
