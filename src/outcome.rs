//! The result of one replication (MODEL.md, "Metrics of one replication"): counts,
//! per-item tallies, daily series, and every metric derived from them.

use serde::{Deserialize, Serialize};

use crate::metrics::METRIC_NAMES;

/// What happened to one content item over the horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub exposures: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub renewals: u64,
}

/// One value per day for each daily series of MODEL.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailySeries {
    pub exposures: Vec<u64>,
    pub clicks: Vec<u64>,
    pub registrations: Vec<u64>,
    pub conversions: Vec<u64>,
    pub renewals: Vec<u64>,
    pub churned: Vec<u64>,
    pub dormant: Vec<u64>,
    pub revenue: Vec<f64>,
    pub spend: Vec<f64>,
    /// End of day: users ever aware.
    pub aware: Vec<u64>,
    /// End of day: users in `Paying`.
    pub active_payers: Vec<u64>,
    /// Users seeded on the day (MODEL.md v2, "Seeding"). Empty when the
    /// scenario has no `[[seeding]]`: zero every day (so the outcome files of a
    /// scenario without seeding are those of earlier versions, byte for byte).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeded: Vec<u64>,
}

impl DailySeries {
    /// The value of series `name` (one of `SERIES_NAMES`) on `day`.
    pub fn value(&self, name: &str, day: usize) -> f64 {
        match name {
            "exposures" => self.exposures[day] as f64,
            "clicks" => self.clicks[day] as f64,
            "registrations" => self.registrations[day] as f64,
            "conversions" => self.conversions[day] as f64,
            "renewals" => self.renewals[day] as f64,
            "churned" => self.churned[day] as f64,
            "dormant" => self.dormant[day] as f64,
            "revenue" => self.revenue[day],
            "spend" => self.spend[day],
            "aware" => self.aware[day] as f64,
            "active_payers" => self.active_payers[day] as f64,
            "seeded" => self.seeded.get(day).map_or(0.0, |&n| n as f64),
            other => panic!("unknown daily series {other:?}"),
        }
    }

    pub fn days(&self) -> usize {
        self.spend.len()
    }
}

/// Everything one replication produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub replication: u32,
    pub population: u32,
    /// Per content item, in scenario order.
    pub items: Vec<ItemCounts>,
    pub registrations: u64,
    pub churned: u64,
    pub dormant: u64,
    pub aware: u64,
    pub active_payers: u64,
    /// Registered users still in the funnel at the end (neither paying nor dormant).
    pub registered_at_end: u64,
    /// Users seeded (MODEL.md v2, "Seeding"), and of them those who were
    /// `Registered` when seeded (who leave the registered users without
    /// converting). Absent from the stored outcome when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeded: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeded_registered: u64,
    /// Summed satisfaction of the users paying at the end.
    pub satisfaction_sum: f64,
    /// Revenue: `Σ_i price_i · (conversions_i + renewals_i)`; with a calendar,
    /// the sum of the daily revenue (each payment at its day's price).
    pub revenue: f64,
    pub spend: f64,
    /// `Σ_t (revenue_t − spend_t) / (1 + r)^(t/365)` (MODEL.md v2); `profit` at `r = 0`.
    pub npv: f64,
    /// Σ ∂log P/∂V over the logistic draws `V` enters (likelihood-ratio score),
    /// when asked for ([`crate::engine::simulate_scored`]); absent from the
    /// stored outcome otherwise (earlier versions stored it always: their files
    /// read back with it, under the same checksum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub daily: DailySeries,
    /// The values of the `[[uncertain]]` keys this replication drew, by key, in
    /// file order (fixed keys left out); absent without uncertainty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncertain: Vec<(String, f64)>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The scalar metrics of one replication, in `METRIC_NAMES` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics(pub Vec<f64>);

impl Metrics {
    pub fn get(&self, name: &str) -> Option<f64> {
        METRIC_NAMES
            .iter()
            .position(|&m| m == name)
            .map(|i| self.0[i])
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

impl Outcome {
    pub fn exposures(&self) -> u64 {
        self.items.iter().map(|i| i.exposures).sum()
    }
    pub fn clicks(&self) -> u64 {
        self.items.iter().map(|i| i.clicks).sum()
    }
    pub fn conversions(&self) -> u64 {
        self.items.iter().map(|i| i.conversions).sum()
    }
    pub fn renewals(&self) -> u64 {
        self.items.iter().map(|i| i.renewals).sum()
    }

    /// `seed_r = Σ_i ĉ_i·r̂_i / Σ_i ĉ_i` over items with clicks, with
    /// `r̂_i = clicks_i / exposures_i` and `ĉ_i = conversions_i / clicks_i`.
    pub fn seed_r(&self) -> f64 {
        let (weighted, weights) = self
            .items
            .iter()
            .filter(|i| i.clicks > 0)
            .map(|i| {
                let c = i.conversions as f64 / i.clicks as f64;
                let r = i.clicks as f64 / i.exposures as f64;
                (c * r, c)
            })
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        ratio(weighted, weights)
    }

    /// Every metric of MODEL.md, in `METRIC_NAMES` order.
    pub fn metrics(&self) -> Metrics {
        let n = f64::from(self.population);
        let registrations = self.registrations as f64;
        let conversions = self.conversions() as f64;
        let acquisition_rate = registrations / n;
        let conversion_rate = ratio(conversions, registrations);
        let awareness = self.aware as f64 / n;
        let satisfaction = ratio(self.satisfaction_sum, self.active_payers as f64);
        let values = METRIC_NAMES
            .iter()
            .map(|&name| match name {
                "exposures" => self.exposures() as f64,
                "clicks" => self.clicks() as f64,
                "registrations" => registrations,
                "conversions" => conversions,
                "renewals" => self.renewals() as f64,
                "churned" => self.churned as f64,
                "dormant" => self.dormant as f64,
                "aware" => self.aware as f64,
                "active_payers" => self.active_payers as f64,
                "revenue" => self.revenue,
                "spend" => self.spend,
                "profit" => self.revenue - self.spend,
                "npv" => self.npv,
                "acquisition_rate" => acquisition_rate,
                "conversion_rate" => conversion_rate,
                "awareness" => awareness,
                "satisfaction" => satisfaction,
                "seed_r" => self.seed_r(),
                "funnel" => acquisition_rate * conversion_rate * satisfaction * awareness,
                "seeded" => self.seeded as f64,
                other => unreachable!("metric {other} has no definition"),
            })
            .collect();
        Metrics(values)
    }
}
