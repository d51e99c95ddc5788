//! Release progress for people (a line per step; spinners for running steps on a terminal) and
//! for machines (one JSON object per line on stdout).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::execute::{Event, Reporter};
use crate::plan::StepId;

pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

pub struct HumanReporter {
    bars: Option<(MultiProgress, Mutex<BTreeMap<StepId, ProgressBar>>)>,
}

impl HumanReporter {
    /// Spinners only when stderr is a terminal and progress was not turned off.
    pub fn new(progress: bool) -> Self {
        let bars = (progress && std::io::stderr().is_terminal())
            .then(|| (MultiProgress::new(), Mutex::new(BTreeMap::new())));
        HumanReporter { bars }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Reporter for HumanReporter {
    fn report(&self, event: &Event) {
        match event {
            Event::StepStarted {
                step,
                phase,
                service,
                action,
            } => {
                let text = format!("{phase:<9} {service:<12} {action}");
                if let Some((multi, bars)) = &self.bars {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(text);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    if let Ok(mut bars) = bars.lock() {
                        bars.insert(*step, bar);
                    }
                } else {
                    self.line(format!("  … {text}"));
                }
            }
            Event::StepSucceeded {
                step,
                phase,
                service,
            } => {
                self.finish(*step);
                self.line(format!("  ✓ {phase:<9} {service}"));
            }
            Event::StepFailed {
                step,
                phase,
                service,
                error,
                help,
            } => {
                self.finish(*step);
                self.line(format!("  ✗ {phase:<9} {service}: {error}"));
                if let Some(help) = help {
                    self.line(format!("    help: {help}"));
                }
            }
            Event::StepDeferred { service, until, .. } => {
                self.line(format!("  ⧗ cleanup   {service} kept warm until {until}"))
            }
            Event::RollbackStarted { reason } => self.line(format!("rolling back: {reason}")),
            Event::Finished { outcome } => self.line(format!("release {outcome}")),
            Event::Warning { message } => self.line(format!("warning: {message}")),
            Event::Note { message } => self.line(message.clone()),
        }
    }
}

impl HumanReporter {
    fn finish(&self, step: StepId) {
        if let Some((_, bars)) = &self.bars
            && let Some(bar) = bars.lock().ok().and_then(|mut b| b.remove(&step))
        {
            bar.finish_and_clear();
        }
    }
}
