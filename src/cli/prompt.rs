//! Asking a person on the terminal before a protected environment is changed.

use std::io::{BufRead, IsTerminal, Write};

use crate::ops::confirm::{Confirmation, Prompt};

use super::Context;

/// Asks on stderr and reads the answer from stdin, when stdin is a terminal.
pub struct Terminal;

impl Prompt for Terminal {
    fn ask(&self, question: &str) -> Option<std::io::Result<bool>> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "{question} [y/N] ");
        let _ = stderr.flush();
        let mut answer = String::new();
        Some(
            std::io::stdin()
                .lock()
                .read_line(&mut answer)
                .map(|_| matches!(answer.trim(), "y" | "Y" | "yes")),
        )
    }
}

/// How this command line confirms: `--yes`, or the terminal.
pub fn confirmation(context: &Context) -> Confirmation<'static> {
    Confirmation {
        assume_yes: context.assume_yes,
        prompt: &Terminal,
    }
}
