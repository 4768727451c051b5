//! Keys to commands: a pure function over crossterm's key events.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiCommand {
    /// Toggle rule N (1-based, keys `1`..`9`).
    ToggleRule(usize),
    /// Swap to the next scenario's policy (`p`).
    NextPolicy,
    /// Restart the calls (`r`).
    Restart,
    /// Quit (`q`, Esc, Ctrl-C).
    Quit,
}

/// The command for a key press; `None` for other keys and for key releases.
pub fn command_for_key(k: KeyEvent) -> Option<UiCommand> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Some(UiCommand::Quit),
        KeyCode::Char(c @ '1'..='9') => Some(UiCommand::ToggleRule(c as usize - '0' as usize)),
        KeyCode::Char('p' | 'P') => Some(UiCommand::NextPolicy),
        KeyCode::Char('r' | 'R') => Some(UiCommand::Restart),
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(UiCommand::Quit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_commands() {
        for n in 1..=9u8 {
            assert_eq!(
                command_for_key(key(KeyCode::Char((b'0' + n) as char))),
                Some(UiCommand::ToggleRule(usize::from(n)))
            );
        }
        assert_eq!(command_for_key(key(KeyCode::Char('0'))), None);
        assert_eq!(command_for_key(key(KeyCode::Char('p'))), Some(UiCommand::NextPolicy));
        assert_eq!(command_for_key(key(KeyCode::Char('r'))), Some(UiCommand::Restart));
        assert_eq!(command_for_key(key(KeyCode::Char('q'))), Some(UiCommand::Quit));
        assert_eq!(command_for_key(key(KeyCode::Esc)), Some(UiCommand::Quit));
        assert_eq!(
            command_for_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(UiCommand::Quit)
        );
        assert_eq!(command_for_key(key(KeyCode::Char('c'))), None);
        assert_eq!(command_for_key(key(KeyCode::Enter)), None);
        let mut release = key(KeyCode::Char('1'));
        release.kind = KeyEventKind::Release;
        assert_eq!(command_for_key(release), None);
    }
}
