//! The initial traits of a user (MODEL.md, "The population"), each a pure
//! function of its key `(seed, replication, user, INITIAL_DAY, event)`. So a
//! trait can be drawn when first needed, or again, and is always the same.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::rng::{Event, EventStream, INITIAL_DAY, ReplicationKey};
use crate::scenario::Segment;

/// The draws of initial traits in one replication.
#[derive(Debug, Clone, Copy)]
pub struct TraitDraws {
    topic: crate::rng::EventStream,
    click_propensity: crate::rng::EventStream,
    churn_propensity: crate::rng::EventStream,
}

impl TraitDraws {
    pub fn new(key: ReplicationKey) -> Self {
        TraitDraws {
            topic: key.stream(INITIAL_DAY, Event::Topic),
            click_propensity: key.stream(INITIAL_DAY, Event::Propensity),
            churn_propensity: key.stream(INITIAL_DAY, Event::ChurnPropensity),
        }
    }

    /// The favourite topic, from the segment's normalised `topics` distribution.
    pub fn favourite_topic(&self, segment: &Segment, user: u32) -> usize {
        favourite_topic_at(segment, self.topic_uniform(user))
    }

    /// The uniform number the favourite topic of `user` is drawn with.
    #[inline]
    pub fn topic_uniform(&self, user: u32) -> f64 {
        self.topic.uniform(user)
    }

    /// `ε_u ~ Normal(0, σ_s)`.
    #[inline]
    pub fn click_propensity(&self, segment: &Segment, user: u32) -> f64 {
        if segment.click_heterogeneity == 0.0 {
            return 0.0;
        }
        click_propensity_from(segment, &mut self.click_propensity.generator(user))
    }

    /// The stream of the favourite topics' uniforms (for drawing many users
    /// at once: [`EventStream::generators_of`]).
    pub fn topic_stream(&self) -> EventStream {
        self.topic
    }

    /// The stream of the click propensities.
    pub fn click_propensity_stream(&self) -> EventStream {
        self.click_propensity
    }

    /// `logit(π_u)` with `π_u ~ Beta(α_s, β_s)`, exact for any positive
    /// finite shapes (see [`crate::distributions::beta_logit`]); the churn
    /// formula needs only the logit.
    pub fn churn_propensity_logit(&self, segment: &Segment, user: u32) -> f64 {
        crate::distributions::beta_logit(
            segment.churn_alpha,
            segment.churn_beta,
            &mut self.churn_propensity.generator(user),
        )
    }
}

/// `ε_u = σ_s·z` with `z` a standard normal from `numbers`, the user's
/// generator of [`Event::Propensity`] (or the same numbers drawn ahead, see
/// [`crate::rng::AheadRng`]); only for `σ_s != 0`.
#[inline]
pub fn click_propensity_from(segment: &Segment, numbers: &mut impl Rng) -> f64 {
    let z: f64 = StandardNormal.sample(numbers);
    segment.click_heterogeneity * z
}

/// The favourite topic of a user of `segment` whose topic draw is the uniform
/// `u`: the first topic whose running total of weights exceeds `u`, else the
/// last.
#[inline]
pub fn favourite_topic_at(segment: &Segment, u: f64) -> usize {
    let mut total = 0.0;
    for &(topic, weight) in &segment.topics {
        total += weight;
        if u < total {
            return topic;
        }
    }
    segment.topics.last().expect("a segment has a topic").0
}
