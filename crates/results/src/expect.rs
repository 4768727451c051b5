//! What a scenario accepts: a set of outcomes (call verdicts or workload outcomes), written in
//! JSON as a list of their names (`["degraded", "blocked"]`). Renderers join the names their
//! own way (`degraded or blocked`); this crate gives no text.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::metrics::Verdict;

/// A set of accepted outcomes, in their severity order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OneOf<T: Ord>(BTreeSet<T>);

/// The verdicts a call may end with.
pub type ExpectedVerdicts = OneOf<Verdict>;

impl<T: Ord> Default for OneOf<T> {
    fn default() -> Self {
        OneOf(BTreeSet::new())
    }
}

impl<T: Ord + Copy> OneOf<T> {
    /// Whether `v` is accepted.
    pub fn contains(&self, v: &T) -> bool {
        self.0.contains(v)
    }

    /// The accepted outcomes, best first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Ord> FromIterator<T> for OneOf<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        OneOf(iter.into_iter().collect())
    }
}

impl<T: Ord> From<T> for OneOf<T> {
    fn from(v: T) -> Self {
        OneOf(BTreeSet::from([v]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_a_json_list_of_names_in_severity_order() {
        let e: ExpectedVerdicts = [Verdict::Blocked, Verdict::Degraded].into_iter().collect();
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"["degraded","blocked"]"#);
        let back: ExpectedVerdicts = serde_json::from_str(r#"["blocked","degraded"]"#).unwrap();
        assert_eq!(back, e);
        assert!(e.contains(&Verdict::Blocked) && !e.contains(&Verdict::Connected));
        assert!(serde_json::from_str::<ExpectedVerdicts>(r#""degraded|blocked""#).is_err());
    }
}
