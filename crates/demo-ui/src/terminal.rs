//! The thin I/O loop around the pure parts: terminal setup, keys, redraws at 4 Hz.

use std::io;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

use crate::keys::{command_for_key, UiCommand};
use crate::model::{DemoState, Update};
use crate::{render, REDRAW};

/// Raw mode and the alternate screen, restored when dropped (on return, error or panic).
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl TerminalGuard {
    pub fn new() -> io::Result<TerminalGuard> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen) {
            let _ = disable_raw_mode();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(out)) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                let _ = execute!(io::stdout(), LeaveAlternateScreen);
                let _ = disable_raw_mode();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(self.terminal.backend_mut(), LeaveAlternateScreen);
        let _ = disable_raw_mode();
        let _ = self.terminal.show_cursor();
    }
}

/// Runs the view until a command handler says stop: applies every pending update, redraws
/// every [`REDRAW`], and hands each key's command to `on_command` (which returns `false` to
/// stop; `q` reaches it like any other command, so the launcher decides how to quit).
/// Updates keep being drawn after their sender is gone (the calls may have ended).
pub fn run(
    state: &mut DemoState,
    updates: &Receiver<Update>,
    mut on_command: impl FnMut(&mut DemoState, UiCommand) -> bool,
) -> io::Result<()> {
    let mut guard = TerminalGuard::new()?;
    let mut next = Instant::now();
    loop {
        // Empty or disconnected: draw what there is (the calls may have ended).
        while let Ok(u) = updates.try_recv() {
            state.apply(u);
        }
        if Instant::now() >= next {
            guard.terminal.draw(|f| render::draw(f, state))?;
            next = Instant::now() + REDRAW;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            if let Event::Key(k) = event::read()? {
                if let Some(c) = command_for_key(k) {
                    if !on_command(state, c) {
                        return Ok(());
                    }
                    // Show the keypress's effect (e.g. a message) without waiting a tick.
                    next = Instant::now();
                }
            }
        }
    }
}
