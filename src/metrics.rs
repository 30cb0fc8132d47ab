//! The metrics of one replication (MODEL.md, "Metrics of one replication") by name.

/// Every scalar metric of a replication, in report order.
pub const METRIC_NAMES: &[&str] = &[
    "exposures",
    "clicks",
    "registrations",
    "conversions",
    "renewals",
    "churned",
    "dormant",
    "aware",
    "active_payers",
    "revenue",
    "spend",
    "profit",
    "npv",
    "acquisition_rate",
    "conversion_rate",
    "awareness",
    "satisfaction",
    "seed_r",
    "funnel",
    "seeded",
];

/// Every daily series of a replication, in report order.
pub const SERIES_NAMES: &[&str] = &[
    "exposures",
    "clicks",
    "registrations",
    "conversions",
    "renewals",
    "churned",
    "dormant",
    "revenue",
    "spend",
    "aware",
    "active_payers",
    "seeded",
];
