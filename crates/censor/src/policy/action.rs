//! The compiled action of a rule: the effects it applies, in the order documented on
//! [`crate::engine`].

use callwall_units::{Bytes, Duration, Rate};

use crate::flow::Dir;

/// A compiled action. Effects apply in a fixed order, documented on [`crate::engine`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Action {
    pub drop: bool,
    pub reject: bool,
    /// (bytes per second, bucket depth in bytes)
    pub police: Option<(u64, u64)>,
    pub loss: Option<f64>,
    pub burst_loss: Option<GeParams>,
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub cut_after_ns: Option<u64>,
    /// (bytes, direction: `None` for both)
    pub freeze_after: Option<(u64, Option<Dir>)>,
    pub block_probability: Option<f64>,
    pub residual_ns: Option<u64>,
}

impl Action {
    /// True if the action never changes a packet (plain pass).
    pub fn is_pass(&self) -> bool {
        *self == Action::default()
    }

    /// A one-line summary for reports, e.g. `police 128kbit + loss 5%`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.block_probability {
            parts.push(format!("block {:.0}% of flows", p * 100.0));
        }
        if self.drop {
            parts.push("drop".into());
        }
        if self.reject {
            parts.push("reject".into());
        }
        if let Some(t) = self.cut_after_ns {
            parts.push(format!(
                "cut after {}",
                Duration::from_std(std::time::Duration::from_nanos(t))
            ));
        }
        if let Some((n, d)) = self.freeze_after {
            let d = d.map_or("Any".to_string(), |d| format!("{d:?}"));
            parts.push(format!("freeze {d} after {}", Bytes::new(n)).to_lowercase());
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {}%", l * 100.0));
        }
        if let Some(ge) = self.burst_loss {
            parts.push(format!("burst loss p={}% r={}%", ge.p * 100.0, ge.r * 100.0));
        }
        if let Some((bps, _)) = self.police {
            parts.push(format!("police {}", Rate::from_bits_per_sec(bps * 8)));
        }
        if self.delay_ns > 0 || self.jitter_ns > 0 {
            parts.push(format!(
                "delay {} jitter {}",
                Duration::from_std(std::time::Duration::from_nanos(self.delay_ns)),
                Duration::from_std(std::time::Duration::from_nanos(self.jitter_ns))
            ));
        }
        if let Some(r) = self.residual_ns {
            parts.push(format!(
                "residual {}",
                Duration::from_std(std::time::Duration::from_nanos(r))
            ));
        }
        if parts.is_empty() {
            "pass".into()
        } else {
            parts.join(" + ")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeParams {
    pub p: f64,
    pub r: f64,
    pub loss_bad: f64,
    pub loss_good: f64,
}
