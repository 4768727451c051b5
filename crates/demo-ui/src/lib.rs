//! The classroom view: calls going through a censor, live.
//!
//! - [`model`]: a pure state model, [`DemoState`], changed only by [`Update`]s (a call's figures
//!   for one more second, its verdict, the censor's rule list with hit counters, a control
//!   change) so whatever feeds it (the harness, a test) never touches the screen.
//! - [`keys`]: key presses to commands, a pure function: `1`..`9` toggle a rule, `p` swaps to
//!   the next scenario's policy, `r` restarts the calls, `q` (or Esc, Ctrl-C) quits.
//!   [`DemoState::control_command`] turns a command into the censor's control
//!   [`callwall_censor::control::Command`].
//! - [`render`]: the full-screen view (ratatui): two to six calls side by side, each with
//!   per-second sparklines of loss, delay and MOS and its verdict, and the rules with their
//!   state and hits. Redrawn every [`REDRAW`] (4 Hz).
//! - [`plain`]: one line per call per second, for when stdout is not a terminal.
//! - [`terminal`]: the thin I/O loop: raw mode and the alternate screen behind a guard that
//!   restores the terminal on every exit path, key polling, a redraw every [`REDRAW`].
//!
//! What it does not do: run calls or the censor, or read their output (phase 2's harness
//! turns those into [`Update`]s).

pub mod keys;
pub mod model;
pub mod plain;
pub mod render;
pub mod terminal;

pub use keys::{command_for_key, UiCommand};
pub use model::{CallSecond, CallView, DemoState, LiveVerdict, RuleView, Update};

/// How often the view is redrawn: 4 Hz.
pub const REDRAW: std::time::Duration = std::time::Duration::from_millis(250);
