//! What the gate decides for one (rule, event) pair that matched: the one type the
//! worker's gate (Lua, in Redis), the backtest's simulation (Rust) and the live dry
//! run share, with the one mapping of each decision to its labels.

/// What the gate decided for one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the actions.
    Execute,
    /// Matched, but inside the cooldown; `remaining_ms` of it is left.
    Suppressed { remaining_ms: i64 },
    /// The threshold has not been reached yet (`count` of its events so far).
    BelowThreshold { count: i64 },
    /// The same event was already decided for this rule (another entry carries it).
    Duplicate,
}

impl Decision {
    /// The backtest's name of this outcome (`outcome` of a sample; the counters
    /// `would_execute`, `suppressed_by_cooldown`, `below_threshold`, `duplicates`).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Execute => Outcome::WouldExecute,
            Self::Suppressed { .. } => Outcome::SuppressedByCooldown,
            Self::BelowThreshold { .. } => Outcome::BelowThreshold,
            Self::Duplicate => Outcome::Duplicate,
        }
    }

    /// The worker's counter of this decision; executions are counted once they ran
    /// (`executions_total`).
    pub fn counter(&self) -> Option<&'static str> {
        match self {
            Self::Execute => None,
            Self::Suppressed { .. } => Some("suppressed_total"),
            Self::BelowThreshold { .. } => Some("below_threshold_total"),
            Self::Duplicate => Some("duplicates_total"),
        }
    }

    /// Why the live dry run says the rule would not execute now, if it would not.
    pub fn live_reason(&self) -> Option<NotNow> {
        match self {
            Self::Execute => None,
            Self::Suppressed { .. } => Some(NotNow::CooldownActive),
            Self::BelowThreshold { .. } => Some(NotNow::ThresholdNotReached),
            Self::Duplicate => Some(NotNow::AlreadyProcessed),
        }
    }

    /// Whether the pair counts as matched in analytics (`matched = executed +
    /// suppressed_by_cooldown`).
    pub fn is_match(&self) -> bool {
        matches!(self, Self::Execute | Self::Suppressed { .. })
    }
}

/// Why a rule would not execute for an event now (the live dry run's `reasons`), in
/// the order they are checked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotNow {
    EventTypeNotMatched,
    ConditionNotMet,
    RuleDisabled,
    /// Not stored, disabled in the database, or stored at another version.
    RuleNotLoaded,
    ThresholdNotReached,
    CooldownActive,
    AlreadyProcessed,
}

/// A decision as a backtest reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    WouldExecute,
    SuppressedByCooldown,
    BelowThreshold,
    Duplicate,
}
