//! `callwall run --shard K/N`: a deterministic slice of the run matrix, so N machines (a CI
//! matrix, a Kubernetes Indexed Job) can each run one slice and `callwall merge` joins them.
//!
//! The unit of slicing is a run, that is a scenario × `--repeat` index, never a single call:
//! the calls of a scenario run at once in one sandbox behind one censor, and what one call
//! gets can depend on its siblings (load, residual blocking of a shared 3-tuple, the relay they
//! share), so cutting a scenario apart would change what is measured; a run also pays its
//! topology and services once, which a per-call slice would pay again per shard.
//!
//! Assignment: longest run first, each to the shard with the least estimated time so far
//! (ties: the lower shard), over the runs sorted by (estimated time, descending; scenario name;
//! repeat). The estimate is the run's longest call budget. Every shard computes the same
//! assignment from the same scenario files and options, so the slices are disjoint and cover
//! the matrix; nothing is exchanged between shards.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// `K/N`: the 1-based shard index and the shard count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A `--shard` value that is not `K/N` with 1 <= K <= N <= 1000.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a shard: write K/N with 1 <= K <= N <= 1000, e.g. 2/4")]
pub struct ShardError(pub String);

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count || count > 1000 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The 0-based shard of every run. `runs[i]` = (scenario name, repeat, estimated time).
pub fn assign(runs: &[(&str, u32, Duration)], count: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (na, ra, ca) = runs[a];
        let (nb, rb, cb) = runs[b];
        cb.cmp(&ca).then(na.cmp(nb)).then(ra.cmp(&rb))
    });
    let mut load = vec![Duration::ZERO; count.max(1) as usize];
    let mut out = vec![0u32; runs.len()];
    for i in order {
        let (k, _) = load
            .iter()
            .enumerate()
            .min_by(|(ka, la), (kb, lb)| la.cmp(lb).then(ka.cmp(kb)))
            .unwrap_or((0, &Duration::ZERO));
        load[k] += runs[i].2;
        out[i] = k as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "1/1001", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slices_are_disjoint_cover_everything_and_balance() {
        let s = |n: u64| Duration::from_secs(n);
        let names: Vec<String> = (0..23).map(|i| format!("sc{i:02}")).collect();
        let runs: Vec<(&str, u32, Duration)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), 0, s(10 + (i as u64 * 7) % 30)))
            .collect();
        for count in 1..=6 {
            let a = assign(&runs, count);
            assert_eq!(a, assign(&runs, count), "deterministic");
            assert!(a.iter().all(|k| *k < count));
            let mut per = vec![Duration::ZERO; count as usize];
            for (i, k) in a.iter().enumerate() {
                per[*k as usize] += runs[i].2;
            }
            let total: Duration = runs.iter().map(|r| r.2).sum();
            let max = per.iter().max().unwrap();
            // LPT is within 4/3 of the optimum, itself at least total/count and the longest run.
            let bound = (total / count).max(s(39)).mul_f64(4.0 / 3.0);
            assert!(*max <= bound, "{count}: {per:?}");
        }
        // Input order does not matter: the same runs listed backwards land on the same shards.
        let mut rev = runs.clone();
        rev.reverse();
        let a = assign(&runs, 4);
        let mut b = assign(&rev, 4);
        b.reverse();
        assert_eq!(a, b);
    }
}
